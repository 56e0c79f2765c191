"""One drift run: status, duration, error, parameters (concept and data drift apart), the
model performance of the predictions recorded with it (:mod:`.run_performance`) and, for
a server check, its report: the per-feature table, the reference against current histogram
of one feature on the same bins (drawn by charts.js from its table), and the violations."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from drift_dashboard.api import Api
from drift_dashboard.deps import ApiDep, SessionDep
from drift_dashboard.pages import run_performance
from drift_dashboard.pages.charts import number
from drift_dashboard.pages.experiment import duration
from drift_dashboard.pages.scope import ExperimentId, RunId, load_scope, render_in

router = APIRouter()
#: The report's cell of the categories folded together past its display limit (the
#: backend's ``checks.engine.FOLDED``; its ``folded`` field says how many).
FOLDED = "__folded__"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def bin_labels(histogram: dict[str, Any]) -> list[str]:
    """Names of the histogram's cells: categories as they are; numeric cells by their edges
    (cell 0 is the underflow ``< edges[0]``, the last the overflow ``> edges[-1]``)."""
    if histogram.get("categories") is not None:
        folded = int(histogram.get("folded") or 0)
        return [
            f"{folded} other categories" if c == FOLDED and folded else str(c)
            for c in histogram["categories"]
        ]
    edges = histogram.get("edges") or []
    if not edges:
        return [f"bin {i + 1}" for i in range(len(histogram.get("reference", [])))]
    labels = [f"< {number(edges[0])}"]
    labels += [f"[{number(a)}, {number(b)})" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {number(edges[-1])}")
    return labels


def histogram_rows(histogram: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per cell: counts and shares of each side (the two samples differ in size, so
    the chart compares shares)."""
    reference = list(histogram.get("reference") or [])
    current = list(histogram.get("current") or [])
    labels = bin_labels(histogram)
    ref_total = sum(reference) or 1
    cur_total = sum(current) or 1
    rows = []
    for i, label in enumerate(labels):
        ref = reference[i] if i < len(reference) else 0
        cur = current[i] if i < len(current) else 0
        rows.append(
            {
                "label": label,
                "reference": ref,
                "current": cur,
                "reference_share": ref / ref_total,
                "current_share": cur / cur_total,
            }
        )
    return rows


def pick_feature(report: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    """The feature to draw: the one asked for, else the first drifted one with a histogram,
    else the first with a histogram."""
    with_histogram: list[dict[str, Any]] = [
        f for f in report.get("features", []) if f.get("histogram")
    ]
    for feature in with_histogram:
        if feature["feature"] == wanted:
            return feature
    drifted = [f for f in with_histogram if f.get("drifted")]
    candidates = drifted or with_histogram
    return candidates[0] if candidates else None


async def load_report(api: Api, experiment_id: str, run: dict[str, Any]) -> dict[str, Any] | None:
    """The check's report; None for runs without one (a client's own run, a check still
    running or failed)."""
    if not (run.get("parameters") or {}).get("check"):
        return None
    report: dict[str, Any] | None = await api.get_or_none(
        f"/experiment/{experiment_id}/drift/{run['id']}/report"
    )
    return report


@router.get("/experiments/{experiment_id}/runs/{run_id}")
async def show_run(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    experiment_id: ExperimentId,
    run_id: RunId,
    feature: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    scope = await load_scope(api, session, experiment_id)
    run = await api.get(f"/experiment/{experiment_id}/drift/{run_id}")
    report = await load_report(api, experiment_id, run)
    performance = await run_performance.load(api, experiment_id, run)
    selected = pick_feature(report, feature) if report else None
    parameters = dict(run.get("parameters") or {})
    check = parameters.pop("check", None)
    return render_in(
        request,
        scope,
        "runs/show.html",
        section="runs",
        title=f"Run {run['created_at'][:16].replace('T', ' ')}",
        run=run,
        duration=duration(run),
        parameters=parameters,
        check=check,
        report=report,
        selected=selected,
        histogram=histogram_rows(selected["histogram"]) if selected else [],
        pretty=pretty,
        num=number,
        performance=performance,
        perf_rows=run_performance.metric_rows(performance) if performance else [],
    )
