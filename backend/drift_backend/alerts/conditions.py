"""What a finished run says about a rule's condition: ``observe(rule, run, report)``.

Pure: the run as ``drifts/`` stores it and, for a server check, its report as ``checks/``
stores it; for ``performance_degraded``, the model's newest decided window as
``performance/`` keeps it. ``None`` means the run says nothing about the condition (out of the rule's scope,
or a drift condition on a run without results, such as a failed one): it neither counts
towards ``for_runs`` nor breaks a streak.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drift_backend.alerts.state import Detail, Observation
from drift_backend.notify.message import FeatureAlert

#: At most this many features ride along in one notification (the report keeps them all).
MAX_FEATURES = 1000

Run = Mapping[str, Any]
Report = Mapping[str, Any]


def in_scope(rule: Mapping[str, Any], run: Run) -> bool:
    models = rule.get("models") or []
    if models and run["model"] not in models:
        return False
    tags = set(run.get("tags") or [])
    return all(tag in tags for tag in rule.get("tags") or [])


def _finished_at(run: Run) -> datetime:
    value: datetime = run.get("finished_at") or run.get("updated_at") or run["created_at"]
    return value


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _feature(result: Mapping[str, Any], kind: str = "drift") -> FeatureAlert:
    return FeatureAlert(
        name=str(result["feature"]),
        kind=kind,
        test=result.get("test"),
        statistic=result.get("statistic"),
        # The corrected p-value is what the drift decision was made on.
        p_value=_first(result.get("p_value_adjusted"), result.get("p_value")),
        distance=result.get("distance"),
        threshold=result.get("threshold"),
    )


def _dataset_drift(run: Run, report: Report | None) -> tuple[bool, Detail] | None:
    if report is not None:
        drifted = [f for f in report.get("features") or [] if f.get("drifted")]
        n_tested = int(report.get("n_tested", 0))
        share = float(report.get("drift_share", 0.0))
        holds = bool(report.get("dataset_drift"))
        return holds, Detail(
            summary=(
                f"dataset drift: {len(drifted)} of {n_tested} features drifted (share {share:.2f})"
                if holds
                else f"no dataset drift: {len(drifted)} of {n_tested} features drifted"
            ),
            run_id=run["_id"],
            features=tuple(_feature(f) for f in drifted[:MAX_FEATURES]),
            values={"drift_share": share, "drifted_features": len(drifted), "n_tested": n_tested},
        )
    result = run.get("data_drift")
    if isinstance(result, Mapping):
        holds = bool(result.get("drift"))
    elif run.get("job_status") == "Completed":
        holds = bool(run.get("drift_detected"))
    else:
        return None
    return holds, Detail(
        summary="data drift reported by the run" if holds else "no data drift reported",
        run_id=run["_id"],
    )


def _feature_drift(
    condition: Mapping[str, Any], run: Run, report: Report | None
) -> tuple[bool, Detail] | None:
    if report is None:
        return None
    name = condition["feature"]
    found = next((f for f in report.get("features") or [] if f.get("feature") == name), None)
    if found is None or found.get("untestable") or found.get("test") is None:
        return None
    effect = found.get("effect_size")
    if effect is None:
        effect = found.get("distance")
    floor = condition.get("min_effect")
    holds = bool(found.get("drifted")) and (
        floor is None or (effect is not None and float(effect) >= floor)
    )
    values = {
        key: float(found[key])
        for key in ("statistic", "p_value", "p_value_adjusted", "distance", "effect_size")
        if found.get(key) is not None
    }
    return holds, Detail(
        summary=f"feature {name} drifted ({found.get('test')})"
        if holds
        else f"feature {name} did not drift",
        run_id=run["_id"],
        features=(_feature(found),) if holds else (),
        values=values,
    )


def _violations(
    condition: Mapping[str, Any], run: Run, report: Report | None
) -> tuple[bool, Detail] | None:
    if report is None:
        return None
    kinds = set(condition.get("kinds") or [])
    matched = [
        v
        for v in report.get("violations") or []
        if not kinds or v.get("kind") in kinds or v.get("constraint_check_type") in kinds
    ]
    features = tuple(
        FeatureAlert(
            name=str(v["feature_name"]), kind=str(v.get("kind") or v["constraint_check_type"])
        )
        for v in matched[:MAX_FEATURES]
    )
    return bool(matched), Detail(
        summary=f"{len(matched)} constraint violations" if matched else "no constraint violations",
        run_id=run["_id"],
        features=features,
        values={"violations": len(matched)},
    )


def _run_failed(run: Run) -> tuple[bool, Detail]:
    failed = run.get("job_status") == "Failed"
    error = run.get("error") or {}
    exception = None
    if failed:
        exception = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
    return failed, Detail(
        summary=f"run failed ({error.get('type', 'Error')})" if failed else "run completed",
        run_id=run["_id"],
        exception=exception,
    )


# --- performance below threshold ---------------------------------------------------

#: ``origin`` of the runs the server makes from performance decisions (drifts.service).
PERFORMANCE_ORIGIN = "performance"
#: The model's newest decided window: (metric, its decision document), or None.
Decided = tuple[str, Mapping[str, Any]] | None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _performance(run: Run, decided: Decided) -> tuple[bool, Detail] | None:
    if decided is None:
        return None
    metric, window = decided
    holds = bool(window["state"][metric])
    shown: Mapping[str, Any] = (window.get("decisions") or {}).get(metric) or {}
    values = {k: _number(shown.get(k)) for k in ("value", "reference", "threshold", "p_value")}
    present = {k: v for k, v in values.items() if v is not None}
    where = f"the {window['window']} from {window['start'].isoformat()}"
    if holds and "value" in present and "reference" in present:
        summary = (
            f"{metric} degraded in {where}: {present['value']:.4g} against the reference's "
            f"{present['reference']:.4g} (p = {present.get('p_value', float('nan')):.2g})"
        )
    else:
        summary = f"{metric} {'degraded' if holds else 'not degraded'} in {where}"
    return holds, Detail(summary=summary, run_id=run["_id"], values=present)


def observe(
    rule: Mapping[str, Any], run: Run, report: Report | None, decided: Decided = None
) -> Observation | None:
    """The rule's condition on ``run`` (finished), or None when the run says nothing of it.
    ``decided``: for ``performance_degraded``, the model's newest decided window."""
    if not in_scope(rule, run) or run.get("job_status") not in ("Completed", "Failed"):
        return None
    condition = rule["condition"]
    kind = condition["type"]
    failed = run.get("job_status") == "Failed"
    found: tuple[bool, Detail] | None
    # A run the server made from a performance decision speaks of that alone, and only
    # such runs speak of it.
    if (kind == "performance_degraded") != (run.get("origin") == PERFORMANCE_ORIGIN):
        return None
    if kind == "performance_degraded":
        found = _performance(run, decided)
    elif kind == "run_failed":
        found = _run_failed(run)
    elif kind == "no_run":
        # Any finished run resets the dead man's switch.
        found = False, Detail(summary="a run finished", run_id=run["_id"])
    elif failed:
        found = None  # no results to look at
    elif kind == "dataset_drift":
        found = _dataset_drift(run, report)
    elif kind == "feature_drift":
        found = _feature_drift(condition, run, report)
    else:
        found = _violations(condition, run, report)
    if found is None:
        return None
    holds, detail = found
    return Observation(holds=holds, at=_finished_at(run), run_id=run["_id"], detail=detail)
