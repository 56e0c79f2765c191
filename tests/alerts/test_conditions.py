"""What a finished run (and its check report) says about each condition, and the scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from drift_backend.alerts.conditions import observe
from drift_backend.checks.engine import FeatureReport, Report

T = datetime(2026, 12, 1, tzinfo=UTC)


def _run(**fields: Any) -> dict[str, Any]:
    return {
        "_id": "run-1",
        "model": "m1",
        "tags": ["nightly", "gpu"],
        "job_status": "Completed",
        "created_at": T,
        "finished_at": T,
        **fields,
    }


def _feature(name: str, drifted: bool, **fields: Any) -> FeatureReport:
    return FeatureReport(
        feature=name,
        kind="numerical",
        test="ks",
        statistic=0.3,
        p_value=0.001,
        p_value_adjusted=0.002,
        distance=fields.pop("distance", 0.3),
        threshold=0.05,
        drifted=drifted,
        n_reference=100,
        n_current=100,
        missing_share=0.0,
        **fields,
    )


REPORT = Report(
    mode="raw",
    dataset_drift=True,
    drift_share=0.5,
    drifted_features=["age"],
    n_tested=2,
    correction="bh",
    alpha=0.05,
    features=[_feature("age", True, effect_size=0.4), _feature("income", False)],
    violations=[
        {
            "feature_name": "age",
            "constraint_check_type": "bound_check",
            "description": "",
            "kind": "Bound",
        },
        {"feature_name": "zip", "constraint_check_type": "missing_column_check", "description": ""},
    ],
).model_dump(mode="json")


def _rule(condition: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"condition": condition, "models": [], "tags": [], **fields}


def test_dataset_drift_from_a_report_names_the_drifted_features() -> None:
    seen = observe(_rule({"type": "dataset_drift"}), _run(), REPORT)
    assert seen is not None
    assert seen.holds
    assert seen.run_id == "run-1"
    assert seen.detail is not None
    assert [(f.name, f.kind, f.test, f.p_value) for f in seen.detail.features] == [
        ("age", "drift", "ks", 0.002)
    ]
    assert seen.detail.values == {"drift_share": 0.5, "drifted_features": 1, "n_tested": 2}


def test_dataset_drift_from_a_clients_run() -> None:
    rule = _rule({"type": "dataset_drift"})
    seen = observe(rule, _run(data_drift={"drift": True, "parameters": {}}), None)
    assert seen is not None
    assert seen.holds
    seen = observe(rule, _run(data_drift=None, drift_detected=False), None)
    assert seen is not None
    assert not seen.holds
    # A failed run has no results: it says nothing about drift.
    assert observe(rule, _run(job_status="Failed"), None) is None


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"type": "feature_drift", "feature": "age"}, True),
        ({"type": "feature_drift", "feature": "age", "min_effect": 0.4}, True),
        ({"type": "feature_drift", "feature": "age", "min_effect": 0.5}, False),
        ({"type": "feature_drift", "feature": "income"}, False),
        ({"type": "feature_drift", "feature": "untested"}, None),
        ({"type": "violations", "kinds": []}, True),
        ({"type": "violations", "kinds": ["Bound"]}, True),
        ({"type": "violations", "kinds": ["missing_column_check"]}, True),
        ({"type": "violations", "kinds": ["Null", "Type"]}, False),
        ({"type": "run_failed"}, False),
        ({"type": "no_run", "within_seconds": 60}, False),
    ],
)
def test_conditions_on_a_checked_run(condition: dict[str, Any], holds: bool | None) -> None:
    seen = observe(_rule(condition), _run(), REPORT)
    if holds is None:
        assert seen is None
    else:
        assert seen is not None
        assert seen.holds is holds


def test_violation_features_carry_flare_kinds_else_the_check_type() -> None:
    seen = observe(_rule({"type": "violations", "kinds": []}), _run(), REPORT)
    assert seen is not None
    assert seen.detail is not None
    assert [(f.name, f.kind) for f in seen.detail.features] == [
        ("age", "Bound"),
        ("zip", "missing_column_check"),
    ]


def test_run_failed_carries_the_error() -> None:
    failed = _run(job_status="Failed", error={"type": "Timeout", "message": "no update for 60 s"})
    seen = observe(_rule({"type": "run_failed"}), failed, None)
    assert seen is not None
    assert seen.holds
    assert seen.detail is not None
    assert seen.detail.exception == "Timeout: no update for 60 s"


@pytest.mark.parametrize(
    ("scope", "in_scope"),
    [
        ({}, True),
        ({"models": ["m1", "m2"]}, True),
        ({"models": ["m2"]}, False),
        ({"tags": ["nightly"]}, True),
        ({"tags": ["nightly", "gpu"]}, True),
        ({"tags": ["nightly", "cpu"]}, False),
    ],
)
def test_scope(scope: dict[str, Any], in_scope: bool) -> None:
    seen = observe(_rule({"type": "run_failed"}, **scope), _run(), None)
    assert (seen is not None) is in_scope


def test_a_running_run_says_nothing() -> None:
    assert observe(_rule({"type": "run_failed"}), _run(job_status="Running"), None) is None
