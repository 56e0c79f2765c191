"""The experiment's charts: the backend's chart routes (``GET /experiment/{id}/charts/...``,
JSON or ``?format=csv``) read server side into tables, and relayed to the browser as CSV
(the links under each chart) and JSON (each chart section's ``data-url``) with the user's
token, which the browser never holds.

A chart whose route answers an error (404 from a backend without the chart routes, a 503)
shows "chart data not available" and never fails the page.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query
from starlette.responses import Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep
from drift_dashboard.pages.scope import ExperimentId

if TYPE_CHECKING:
    from drift_dashboard.pages.experiment import RunFilters

router = APIRouter()
#: Points per time chart (the backend caps buckets; a table of this many rows stays readable).
BUCKETS = 120
HEATMAP_RUNS = 40
HEATMAP_FEATURES = 25
Kind = Literal["timeline", "feature", "heatmap", "violations"]


@dataclass
class Chart:
    kind: str
    data: dict[str, Any] | None = None
    error: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    experiment_id: str = ""

    @property
    def available(self) -> bool:
        return self.data is not None

    def url(self, fmt: str) -> str:
        query = urlencode(self.params)
        return f"/experiments/{self.experiment_id}/charts/{self.kind}.{fmt}" + (
            f"?{query}" if query else ""
        )


@dataclass
class Board:
    timeline: Chart
    feature: Chart
    heatmap: Chart
    violations: Chart
    #: Features to pick for the history chart (the heatmap's, most drifted first).
    features: list[str]
    selected: str


def backend_path(experiment_id: str, kind: str, feature: str = "") -> str:
    base = f"/experiment/{experiment_id}/charts"
    if kind == "feature":
        return f"{base}/features/{quote(feature, safe='')}"
    return f"{base}/{kind}"


def window_params(filters: RunFilters) -> dict[str, str]:
    params: dict[str, str] = {}
    if filters.model:
        params["model"] = filters.model
    start, end = filters.window()
    if start is not None:
        params["from"] = start.isoformat()
    if end is not None:
        params["to"] = end.isoformat()
    return params


async def _fetch(api: Api, chart: Chart, path: str, params: dict[str, Any]) -> Chart:
    try:
        chart.data = await api.get(path, params=params)
    except ApiError as exc:
        chart.error = (
            "chart data not available"
            if exc.status == 404
            else f"chart data not available ({exc.detail})"
        )
    return chart


async def load_all(api: Api, experiment_id: str, filters: RunFilters, feature: str) -> Board:
    window = window_params(filters)
    model = {"model": filters.model} if filters.model else {}
    timeline = Chart("timeline", params=dict(window), experiment_id=experiment_id)
    heatmap = Chart("heatmap", params=dict(model), experiment_id=experiment_id)
    violations = Chart("violations", params=dict(window), experiment_id=experiment_id)
    await asyncio.gather(
        _fetch(
            api, timeline, backend_path(experiment_id, "timeline"), {**window, "buckets": BUCKETS}
        ),
        _fetch(
            api,
            heatmap,
            backend_path(experiment_id, "heatmap"),
            {**model, "runs": HEATMAP_RUNS, "features": HEATMAP_FEATURES},
        ),
        _fetch(
            api,
            violations,
            backend_path(experiment_id, "violations"),
            {**window, "buckets": BUCKETS},
        ),
    )
    features = [f["feature"] for f in (heatmap.data or {}).get("features", [])]
    selected = feature or (features[0] if features else "")
    history = Chart("feature", params={**window, "feature": selected}, experiment_id=experiment_id)
    if selected:
        await _fetch(
            api,
            history,
            backend_path(experiment_id, "feature", selected),
            {**window, "buckets": BUCKETS},
        )
    else:
        # The features to choose from come from the heatmap's data.
        history.error = heatmap.error or "No checked features yet."
    if selected and selected not in features:
        features.append(selected)
    if heatmap.data is not None:
        heatmap.data = heatmap_grid(heatmap.data)
    return Board(timeline, history, heatmap, violations, features, selected)


def cell_level(cell: dict[str, Any] | None) -> int:
    """A heatmap cell's colour bucket, 0 (not tested) to 4 (drifted): a handful of classes
    (``hm-0`` ... ``hm-4``), never a computed colour (the CSP forbids style attributes)."""
    if cell is None:
        return 0
    if cell.get("drifted"):
        return 4
    p = cell.get("p_value_adjusted")
    if p is None:
        p = cell.get("p_value")
    if p is not None:
        return 3 if p < 0.05 else 2 if p < 0.2 else 1
    distance = cell.get("distance")
    if distance is not None and distance >= 0.05:
        return 2
    return 1


def heatmap_grid(data: dict[str, Any]) -> dict[str, Any]:
    """Rows of features x columns of runs (oldest left, as on the time charts)."""
    runs = list(reversed(data.get("runs", [])))
    cells = {(c["run_id"], c["feature"]): c for c in data.get("cells", [])}
    rows = []
    for feature in data.get("features", []):
        name = feature["feature"]
        row = []
        for run in runs:
            cell = cells.get((run["run_id"], name))
            row.append({"cell": cell, "level": cell_level(cell), "run": run})
        rows.append({"feature": name, "drifted_runs": feature.get("drifted_runs", 0), "cells": row})
    return {**data, "runs": runs, "rows": rows}


def number(value: Any, digits: int = 4) -> str:
    """A statistic for a table: empty when absent, short but exact enough to compare."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.{max(1, digits - 2)}e}"
        return f"{value:.{digits}g}" if abs(value) >= 10**digits else f"{round(value, digits):g}"
    return str(value)


FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@router.get("/experiments/{experiment_id}/charts/{kind}.{fmt}")
async def chart_data(
    api: ApiDep,
    experiment_id: ExperimentId,
    kind: Kind,
    fmt: Literal["csv", "json"],
    model: Annotated[str, Query(max_length=256)] = "",
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    end: Annotated[str, Query(alias="to", max_length=40)] = "",
    feature: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    """A chart's numbers through our origin, with the user's token (CSV downloads, JSON for
    the chart scripts)."""
    if kind == "feature" and not feature.strip():
        raise HTTPException(422, "Name a feature (feature=...).")
    params: dict[str, Any] = {
        k: v for k, v in (("model", model), ("from", start), ("to", end)) if v
    }
    if kind == "heatmap":
        params = {
            **({"model": model} if model else {}),
            "runs": HEATMAP_RUNS,
            "features": HEATMAP_FEATURES,
        }
    else:
        params["buckets"] = BUCKETS
    if fmt == "csv":
        params["format"] = "csv"
    answer = await api.request("GET", backend_path(experiment_id, kind, feature), params=params)
    headers = {"Cache-Control": "private, no-store"}
    if fmt == "csv":
        name = f"{kind}-{feature}" if kind == "feature" else kind
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
        headers["Content-Disposition"] = f'attachment; filename="{safe}.csv"'
    return Response(answer.content, media_type=FORMATS[fmt], headers=headers)
