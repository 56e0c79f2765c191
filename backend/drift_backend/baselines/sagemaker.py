"""SageMaker Model Monitor / Flare ``statistics.json`` + ``constraints.json`` <-> :class:`Profile`.

Schemas: AWS docs "Schema for Statistics (statistics.json file)" and "Schema for Constraints
(constraints.json file)" (the analyzer is built on Deequ). Flare (PyPI ``domino-flare``)
writes the same files with ``distribution: null`` and NaN moments for all-missing columns:
such a feature gets no quantiles (``has_distribution=False``) but keeps its completeness,
type, domain and bound constraints. The KLL conversion is described in :mod:`.kll`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from pydantic import ValidationError

from drift_backend.baselines import sagemaker_schema as sm
from drift_backend.baselines.ingest import BatchError
from drift_backend.baselines.kll import export_kll, quantile_cdf, sketch_quantiles
from drift_backend.baselines.model import (
    CategoricalSummary,
    DistributionConstraints,
    FeatureConstraints,
    FeatureKind,
    FeatureProfile,
    InferredType,
    MonitoringConfig,
    NumericSummary,
    Profile,
)
from drift_backend.baselines.profile import DEFAULT_BINS, DEFAULT_QUANTILES, frozen_edges

_KINDS: dict[InferredType, FeatureKind] = {
    "Integral": "numerical",
    "Fractional": "numerical",
    "String": "categorical",
    "Unknown": "unknown",
}


def _load(raw: bytes | str | dict[str, Any], field: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError(field, f"invalid JSON: {exc}", 422) from exc
    if not isinstance(doc, dict):
        raise BatchError(field, "expected a JSON object", 422)
    return doc


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _histogram(
    kll: sm.Kll | None, quantiles: list[float] | None, present: int
) -> tuple[list[float] | None, list[float] | None]:
    """Edges and counts: the KLL buckets if usable, else equal-mass bins of the quantiles."""
    buckets = kll.buckets if kll else None
    if buckets:
        edges = [buckets[0].lower_bound] + [b.upper_bound for b in buckets]
        if all(math.isfinite(e) for e in edges) and np.all(np.diff(edges) > 0):
            return edges, [0.0] + [float(b.count) for b in buckets] + [0.0]
    if quantiles is None:
        return None, None
    edges_a = frozen_edges(np.asarray(quantiles), DEFAULT_BINS)
    cdf = quantile_cdf(quantiles, edges_a)
    cdf[0], cdf[-1] = 0.0, 1.0  # the first and last bins are closed: values at the min count
    inner = np.diff(cdf) if edges_a.size > 2 or edges_a[0] != edges_a[-1] else np.ones(1)
    inner = inner * present / max(inner.sum(), 1e-300)
    return edges_a.tolist(), [0.0, *inner.tolist(), 0.0]


def _numeric(stats: sm.NumericalStatistics, n_quantiles: int) -> NumericSummary:
    lo, hi = _finite(stats.min), _finite(stats.max)
    kll = stats.distribution.kll if stats.distribution else None
    sketch = kll.sketch if kll else None
    q = sketch_quantiles(sketch.data, n_quantiles, lo, hi) if sketch and sketch.data else None
    quantiles = q.tolist() if q is not None else None
    present = stats.common.num_present if stats.common and stats.common.num_present else 0
    edges, counts = _histogram(kll, quantiles, present)
    return NumericSummary(
        min=lo,
        max=hi,
        mean=_finite(stats.mean),
        std=_finite(stats.std_dev),
        sum=_finite(stats.sum),
        quantiles=quantiles,
        edges=edges,
        counts=counts,
    )


def _categorical(stats: sm.StringStatistics) -> CategoricalSummary | None:
    dist = stats.distribution.categorical if stats.distribution else None
    if dist is None or not dist.buckets:
        return None
    ordered = sorted(dist.buckets, key=lambda b: (-b.count, b.value))
    present = stats.common.num_present if stats.common and stats.common.num_present else 0
    other = max(0, present - sum(b.count for b in ordered))
    return CategoricalSummary(
        values=[b.value for b in ordered],
        counts=[b.count for b in ordered],
        other_count=other,
        capped=other > 0,
    )


def _feature(
    f: sm.StatisticsFeature, c: sm.ConstraintFeature | None, item_count: int, n_quantiles: int
) -> FeatureProfile:
    inferred = f.inferred_type
    stats = f.numerical_statistics or f.string_statistics
    common = stats.common if stats else None
    present = common.num_present if common else None
    missing = common.num_missing if common else None
    count = present + missing if present is not None and missing is not None else item_count
    if missing is None and c is not None and c.completeness is not None:
        missing = round(count * (1.0 - c.completeness))
    missing = missing if missing is not None else 0
    numeric = _numeric(f.numerical_statistics, n_quantiles) if f.numerical_statistics else None
    categorical = _categorical(f.string_statistics) if f.string_statistics else None
    completeness = (count - missing) / count if count else 0.0
    return FeatureProfile(
        name=f.name,
        kind=_KINDS[inferred],
        inferred_type=inferred,
        dtype="sagemaker",
        count=count,
        missing=missing,
        completeness=completeness,
        distinct_count=f.string_statistics.distinct_count if f.string_statistics else None,
        has_distribution=bool((numeric and numeric.quantiles) or categorical),
        numeric=numeric,
        categorical=categorical,
        constraints=FeatureConstraints(
            completeness=c.completeness if c else None,
            is_non_negative=c.num_constraints.is_non_negative if c and c.num_constraints else None,
            domains=c.string_constraints.domains if c and c.string_constraints else None,
            overrides=c.monitoringConfigOverrides if c else None,
        ),
    )


def _monitoring(cfg: sm.MonitoringConfig | None) -> MonitoringConfig:
    if cfg is None:
        return MonitoringConfig()
    defaults = MonitoringConfig()
    d = cfg.distribution_constraints or sm.DistributionConstraints()
    base = DistributionConstraints()
    return MonitoringConfig(
        evaluate_constraints=sm.enabled(cfg.evaluate_constraints, defaults.evaluate_constraints),
        emit_metrics=sm.enabled(cfg.emit_metrics, defaults.emit_metrics),
        datatype_check_threshold=_pick(
            cfg.datatype_check_threshold, defaults.datatype_check_threshold
        ),
        domain_content_threshold=_pick(
            cfg.domain_content_threshold, defaults.domain_content_threshold
        ),
        distribution_constraints=DistributionConstraints(
            perform_comparison=sm.enabled(d.perform_comparison, base.perform_comparison),
            comparison_threshold=_pick(d.comparison_threshold, base.comparison_threshold),
            comparison_method=d.method() or base.comparison_method,
            categorical_comparison_threshold=_pick(
                d.categorical_comparison_threshold, base.categorical_comparison_threshold
            ),
            categorical_drift_method=d.categorical_method() or base.categorical_drift_method,
        ),
    )


def _pick(value: float | None, default: float) -> float:
    return value if value is not None and math.isfinite(value) else default


def import_sagemaker(
    statistics: bytes | str | dict[str, Any],
    constraints: bytes | str | dict[str, Any] | None = None,
    *,
    quantiles: int = DEFAULT_QUANTILES,
) -> Profile:
    """A profile from SageMaker/Flare files; :class:`BatchError` (422) naming the bad field."""
    stats_doc = _load(statistics, "statistics")
    cons_doc = _load(constraints, "constraints") if constraints is not None else None
    try:
        stats = sm.Statistics.model_validate(stats_doc)
    except ValidationError as exc:
        raise BatchError("statistics", sm.describe(exc), 422) from exc
    try:
        cons = sm.Constraints.model_validate(cons_doc) if cons_doc is not None else None
    except ValidationError as exc:
        raise BatchError("constraints", sm.describe(exc), 422) from exc
    names = [f.name for f in stats.features]
    if len(set(names)) != len(names):
        raise BatchError("statistics", "duplicate feature names", 422)
    by_name = {c.name: c for c in cons.features} if cons else {}
    item_count = stats.dataset.item_count if stats.dataset and stats.dataset.item_count else 0
    features = [_feature(f, by_name.get(f.name), item_count, quantiles) for f in stats.features]
    for extra in (c for c in (cons.features if cons else []) if c.name not in set(names)):
        only = sm.StatisticsFeature(name=extra.name, inferred_type=extra.inferred_type)
        features.append(_feature(only, extra, item_count, quantiles))
    return Profile(
        source="sagemaker",
        row_count=item_count or max((f.count for f in features), default=0),
        features=features,
        monitoring_config=_monitoring(cons.monitoring_config if cons else None),
    )


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def _sm_type(f: FeatureProfile) -> InferredType:
    if f.kind == "boolean":
        return "String"
    if f.kind == "datetime":
        return "Fractional"
    return f.inferred_type


def _statistics_feature(f: FeatureProfile) -> dict[str, Any]:
    inferred = _sm_type(f)
    out: dict[str, Any] = {"name": f.name, "inferred_type": inferred}
    common = {"num_present": f.count - f.missing, "num_missing": f.missing}
    if inferred in ("Integral", "Fractional") and f.numeric is not None:
        num = f.numeric
        kll = export_kll(num.quantiles, f.count - f.missing) if num.quantiles else None
        out["numerical_statistics"] = {
            "common": common,
            "mean": num.mean,
            "sum": num.sum,
            "std_dev": num.std,
            "min": num.min,
            "max": num.max,
            "distribution": {"kll": kll} if kll else None,
        }
    elif inferred == "String":
        cat = f.categorical
        buckets = (
            [{"value": v, "count": c} for v, c in zip(cat.values, cat.counts, strict=True)]
            if cat
            else None
        )
        out["string_statistics"] = {
            "common": common,
            "distinct_count": f.distinct_count,
            "distribution": {"categorical": {"buckets": buckets}} if buckets else None,
        }
    return out


def export_statistics(profile: Profile) -> dict[str, Any]:
    """``statistics.json`` (version 0) for ``profile``."""
    return {
        "version": 0,
        "dataset": {"item_count": profile.row_count},
        "features": [_statistics_feature(f) for f in profile.features],
    }


def _constraints_feature(f: FeatureProfile) -> dict[str, Any]:
    inferred = _sm_type(f)
    c = f.constraints
    out: dict[str, Any] = {
        "name": f.name,
        "inferred_type": inferred,
        "completeness": c.completeness if c.completeness is not None else f.completeness,
    }
    if inferred in ("Integral", "Fractional") and c.is_non_negative is not None:
        out["num_constraints"] = {"is_non_negative": c.is_non_negative}
    if c.domains is not None:
        out["string_constraints"] = {"domains": c.domains}
    if c.overrides is not None:
        out["monitoringConfigOverrides"] = c.overrides
    return out


def export_constraints(profile: Profile) -> dict[str, Any]:
    """``constraints.json`` (version 0) for ``profile``, monitoring config included."""
    m = profile.monitoring_config
    d = m.distribution_constraints
    return {
        "version": 0,
        "features": [_constraints_feature(f) for f in profile.features],
        "monitoring_config": {
            "evaluate_constraints": _enabled(m.evaluate_constraints),
            "emit_metrics": _enabled(m.emit_metrics),
            "datatype_check_threshold": m.datatype_check_threshold,
            "domain_content_threshold": m.domain_content_threshold,
            "distribution_constraints": {
                "perform_comparison": _enabled(d.perform_comparison),
                "comparison_threshold": d.comparison_threshold,
                "comparison_method": d.comparison_method,
                "categorical_comparison_threshold": d.categorical_comparison_threshold,
                "categorical_drift_method": d.categorical_drift_method,
            },
        },
    }
