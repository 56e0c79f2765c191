"""Constraint violations of a current batch against a baseline profile.

SageMaker Model Monitor check types (AWS docs "Schema for Violations
(constraint_violations.json file)"): ``missing_column_check``, ``extra_column_check``,
``data_type_check`` (share of values not of the baseline type above
``datatype_check_threshold``), ``completeness_check`` (completeness below the baseline's
``completeness`` constraint, less ``completeness_tolerance``), ``categorical_values_check``
(share of values outside ``domains`` above ``domain_content_threshold``). Per-feature
``monitoringConfigOverrides`` thresholds win over the global ones. Flare's alert kinds
(``flare.runtime``) add ``Bound`` (values outside the baseline [min, max]), ``Negative``
(negatives where ``is_non_negative``), ``Outlier`` (``|x - mean| / std`` above the cutoff,
4 by default) and ``Null`` (missing values where the baseline had none); the SageMaker
checks that match Flare's ``Type`` and ``Categorical`` carry those kinds too.
``baseline_drift_check`` belongs to the drift tests, not here.

Works on a :class:`BatchSummary`, so raw and summary mode give the same violations.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from drift_backend.baselines.model import BatchSummary, FeatureCounts, FeatureProfile, Profile
from drift_backend.baselines.summary import OUTLIER_CUTOFF, profile_batch

FlareKind = Literal["Outlier", "Bound", "Type", "Null", "Negative", "Categorical"]


class Violation(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature_name: str
    constraint_check_type: str
    description: str
    kind: FlareKind | None = None


def _threshold(f: FeatureProfile, key: str, default: float) -> float:
    value: Any = (f.constraints.overrides or {}).get(key)
    return float(value) if isinstance(value, int | float) else default


def _feature_violations(
    f: FeatureProfile, c: FeatureCounts, profile: Profile, tolerance: float, cutoff: float
) -> list[Violation]:
    out: list[Violation] = []

    def add(check: str, text: str, kind: FlareKind | None = None) -> None:
        out.append(
            Violation(feature_name=f.name, constraint_check_type=check, description=text, kind=kind)
        )

    cfg = profile.monitoring_config
    present = c.count - c.missing
    if present and c.type_mismatch:
        share = c.type_mismatch / present
        limit = _threshold(f, "datatype_check_threshold", cfg.datatype_check_threshold)
        if share > limit:
            add(
                "data_type_check",
                f"{share:.2%} of values are not {f.inferred_type} (threshold {limit:.2%})",
                "Type",
            )
    expected = f.constraints.completeness
    if c.count and expected is not None:
        completeness = 1.0 - c.missing / c.count
        if completeness < expected - tolerance:
            add(
                "completeness_check",
                f"completeness {completeness:.4f} is below the baseline's {expected:.4f}",
            )
    if c.missing and f.missing == 0 and f.count > 0:
        add("null_check", f"{c.missing} missing values; the baseline had none", "Null")
    if f.constraints.domains is not None and c.count - c.missing - c.type_mismatch > 0:
        share = c.out_of_domain / (c.count - c.missing - c.type_mismatch)
        limit = _threshold(f, "domain_content_threshold", cfg.domain_content_threshold)
        if share > limit:
            add(
                "categorical_values_check",
                f"{share:.2%} of values are outside the baseline domain (threshold {limit:.2%})",
                "Categorical",
            )
    num = f.numeric
    if num is not None and (c.below_min or c.above_max):
        add(
            "bound_check",
            f"{c.below_min} values below {num.min} and {c.above_max} above {num.max}",
            "Bound",
        )
    if f.constraints.is_non_negative and c.negative:
        add(
            "non_negative_check",
            f"{c.negative} negative values; the baseline is non-negative",
            "Negative",
        )
    if num is not None and c.outliers:
        add(
            "outlier_check",
            f"{c.outliers} values more than {cutoff} standard deviations from the mean {num.mean}",
            "Outlier",
        )
    return out


def check_violations(
    profile: Profile,
    current: pa.Table | BatchSummary,
    *,
    completeness_tolerance: float = 0.0,
    outlier_cutoff: float = OUTLIER_CUTOFF,
) -> list[Violation]:
    """Violations of ``current`` (a table, or its summary in summary mode).

    Nothing is checked when the profile's ``evaluate_constraints`` is disabled. A summary
    must have been computed with the same ``outlier_cutoff`` (it is in the bins).
    """
    if not profile.monitoring_config.evaluate_constraints:
        return []
    summary = (
        current
        if isinstance(current, BatchSummary)
        else profile_batch(current, profile, outlier_cutoff=outlier_cutoff)
    )
    out: list[Violation] = []
    for f in profile.features:
        c = summary.feature(f.name)
        if c is None or not c.present:
            out.append(
                Violation(
                    feature_name=f.name,
                    constraint_check_type="missing_column_check",
                    description="column missing from the current batch",
                )
            )
            continue
        out.extend(_feature_violations(f, c, profile, completeness_tolerance, outlier_cutoff))
    out.extend(
        Violation(
            feature_name=name,
            constraint_check_type="extra_column_check",
            description="column not in the baseline",
        )
        for name in summary.extra_columns
    )
    return out
