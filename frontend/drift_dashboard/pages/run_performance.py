"""A drift run's model performance, for the run page: the metrics of the predictions recorded
with the run (``GET /experiment/{id}/drift/{run}/performance``, docs/performance.md,
"Metrics per drift run"), beside the reference's and the estimates. Pure but for the one
request; a run without predictions shows nothing."""

from __future__ import annotations

from typing import Any

from drift_dashboard.api import Api


async def load(api: Api, experiment_id: str, run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's performance answer; None when no predictions were recorded with it. The
    run says whether any were (``has_predictions``), so most runs cost no request; a
    backend that does not say (older) is asked."""
    if not run.get("has_predictions", True):
        return None
    answer: dict[str, Any] | None = await api.get_or_none(
        f"/experiment/{experiment_id}/drift/{run['id']}/performance"
    )
    return answer


def metric_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per realised metric: its value (or why there is none), the reference's, and
    the estimate before labels with its band when there is one. Read by name, so a metric
    the backend adds shows up here unchanged."""
    run = answer["run"]
    reference = (answer.get("reference") or {}).get("metrics") or {}
    estimated = run.get("estimated") or {}
    rows = []
    for name, metric in run["metrics"].items():
        estimate = estimated.get(name) if isinstance(estimated.get(name), dict) else None
        rows.append(
            {
                "name": name,
                "value": metric.get("value"),
                "reason": metric.get("reason"),
                "reference": (reference.get(name) or {}).get("value"),
                "estimated": estimate,
            }
        )
    return rows
