"""A bad batch yields the matching SageMaker and Flare violations; a clean one none."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from drift_backend.baselines import (
    bins,
    build_profile,
    check_violations,
    export_constraints,
    export_statistics,
    import_sagemaker,
    summarize,
)
from drift_backend.baselines.model import MonitoringConfig


def _reference() -> pa.Table:
    rng = np.random.default_rng(11)
    n = 3000
    return pa.table(
        {
            "amount": rng.uniform(0.0, 10.0, n),
            "score": rng.normal(0.0, 1.0, n),
            "city": rng.choice(["Paris", "Oslo", "Rome"], n),
            "age": rng.integers(18, 90, n),
            "note": rng.choice(["a", "b"], n),
        }
    )


def _kinds(violations: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(v.feature_name, v.constraint_check_type) for v in violations}


def test_clean_batch_has_no_violations() -> None:
    reference = _reference()
    profile = build_profile(reference)
    assert check_violations(profile, reference.slice(0, 500)) == []


def test_bad_batch_yields_matching_violations() -> None:
    profile = build_profile(_reference())
    bad = pa.table(
        {
            "amount": [1.0, -3.0, 2.0, 4.0, 1.0, 2.0, 3.0, 1.0, 2.0, 1.0],
            "score": [0.1, 0.2, 999.0, 0.0, -0.1, 0.3, None, 0.1, 0.0, 0.2],
            "city": ["Paris", "Berlin", "Berlin", "Oslo", "Madrid", "Rome", "Paris", "X", "Y", "Z"],
            "age": ["20", "thirty", "forty", "50", "sixty", "70", "eighty", "x", "y", "z"],
            "extra": list(range(10)),
        }
    )
    violations = check_violations(profile, bad)
    found = _kinds(violations)
    assert ("amount", "non_negative_check") in found
    assert ("amount", "bound_check") in found
    assert ("score", "bound_check") in found
    assert ("score", "outlier_check") in found
    assert ("score", "completeness_check") in found
    assert ("score", "null_check") in found
    assert ("city", "categorical_values_check") in found
    assert ("age", "data_type_check") in found
    assert ("note", "missing_column_check") in found
    assert ("extra", "extra_column_check") in found
    kinds = {v.constraint_check_type: v.kind for v in violations}
    assert kinds["non_negative_check"] == "Negative"
    assert kinds["outlier_check"] == "Outlier"
    assert kinds["data_type_check"] == "Type"
    assert kinds["categorical_values_check"] == "Categorical"
    assert kinds["missing_column_check"] is None
    assert all(v.description for v in violations)
    # Summary mode gives the same violations as raw mode.
    assert check_violations(profile, summarize(bad, bins(profile))) == violations
    # And so does the SageMaker round trip of the baseline.
    imported = import_sagemaker(export_statistics(profile), export_constraints(profile))
    assert _kinds(check_violations(imported, bad)) == found


def test_thresholds_and_overrides() -> None:
    profile = build_profile(
        pa.table({"city": ["a", "b", "a", "b"] * 10}),
        monitoring_config=MonitoringConfig(domain_content_threshold=0.5),
    )
    batch = pa.table({"city": ["a", "a", "c", "b"]})  # 25% outside the domain
    assert check_violations(profile, batch) == []
    strict = profile.model_copy(update={"monitoring_config": MonitoringConfig()})
    assert _kinds(check_violations(strict, batch)) == {("city", "categorical_values_check")}
    off = profile.model_copy(
        update={"monitoring_config": MonitoringConfig(evaluate_constraints=False)}
    )
    assert check_violations(off, pa.table({"other": [1]})) == []


def test_wrong_type_for_boolean_and_integral() -> None:
    profile = build_profile(pa.table({"flag": [True, False] * 10, "n": list(range(20))}))
    batch = pa.table({"flag": ["yes", "no", "true", "maybe"], "n": [1.5, 2.0, 3.25, 4.0]})
    found = _kinds(check_violations(profile, batch))
    assert ("flag", "data_type_check") in found
    assert ("n", "data_type_check") in found


def test_values_in_a_column_the_reference_never_filled_are_out_of_domain() -> None:
    reference = pa.table({"code": pa.array([None] * 50, pa.string()), "x": np.arange(50.0)})
    feature_bins = bins(build_profile(reference))
    code = next(f for f in feature_bins.features if f.name == "code")
    assert code.domains == []
    current = pa.table({"code": ["a", "b", None, "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    counted = next(f for f in summarize(current, feature_bins).features if f.name == "code")
    assert counted.out_of_domain == 3
