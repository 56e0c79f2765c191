"""The Performance tab of an experiment (issue 10): a model's metrics per window over time
(realised, estimated with its band, the reference), label coverage, the confusion matrix of
one window and the decision of each, every chart with its numbers as a table and a CSV link.

Everything comes from two backend routes: ``GET /experiment/{id}/performance/models`` (the
models to pick) and ``GET /experiment/{id}/performance?model&window&from&to``. The choices
(model, window, range, metric, the matrix's window) are a GET form, so a view is a URL and
works without JavaScript; charts.js draws from the tables. The body refreshes itself on
``performance.window_updated`` events (the event relay, as the runs table does).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from drift_dashboard.api import Api, ApiError
from drift_dashboard.deps import ApiDep, SessionDep
from drift_dashboard.pages import performance_tables as tables
from drift_dashboard.pages.charts import number
from drift_dashboard.pages.scope import (
    ExperimentId,
    Text,
    load_scope,
    moment,
    read_range,
    render_in,
)
from drift_dashboard.templating import render

router = APIRouter()
WINDOWS = ("hour", "day", "week")
Short = Annotated[str, Query(max_length=40)]


@dataclass
class PerformanceQuery:
    """The tab's choices as the form sends them, checked; ``errors`` says what was ignored."""

    model: str = ""
    window: str = "day"
    start: str = ""
    end: str = ""
    metric: str = ""
    at: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(
        cls, model: str, window: str, start: str, end: str, metric: str, at: str
    ) -> PerformanceQuery:
        out = cls(model=model.strip(), metric=metric.strip(), at=at.strip())
        if window in WINDOWS:
            out.window = window
        elif window:
            out.errors.append(f"Unknown window “{window}”: showing days.")
        out.start, out.end = read_range(start, end, out.errors, times=True)
        return out

    def api_params(self) -> dict[str, str]:
        """The backend's query: ``from`` and ``to`` with a UTC offset (a date's ``to``
        includes that whole day, as the runs filter's does)."""
        params = {"model": self.model, "window": self.window}
        if self.start:
            params["from"] = _iso(moment(self.start, end=False))
        if self.end:
            params["to"] = _iso(moment(self.end, end=True))
        return params

    def query(self, **changes: str) -> dict[str, str]:
        values = {
            "model": self.model,
            "window": self.window,
            "from": self.start,
            "to": self.end,
            "metric": self.metric,
            "at": self.at,
            **changes,
        }
        return {k: v for k, v in values.items() if v and not (k == "window" and v == "day")}


def _iso(moment: datetime | None) -> str:
    assert moment is not None  # parse kept only values that read
    return moment.isoformat()


async def get_query(
    model: Text = "",
    window: Annotated[str, Query(max_length=16)] = "",
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    end: Annotated[str, Query(alias="to", max_length=40)] = "",
    metric: Text = "",
    at: Short = "",
) -> PerformanceQuery:
    return PerformanceQuery.parse(model, window, start, end, metric, at)


QueryDep = Annotated[PerformanceQuery, Depends(get_query)]


@dataclass
class Board:
    """What the tab shows: the models, the answer for the chosen one (or why there is none),
    and the tables built from it."""

    experiment_id: str
    query: PerformanceQuery
    models: list[dict[str, Any]]
    answer: dict[str, Any] | None = None
    #: The backend's refusal of the chosen model or range (shown, never a failed page).
    error: str | None = None
    metric: str = ""
    metrics: list[str] = field(default_factory=list)
    window: dict[str, Any] | None = None
    #: The windows with a confusion matrix, newest first (the matrix's window picker).
    matrix_windows: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, tables.Table] = field(default_factory=dict)

    def url(self, kind: str, **changes: str) -> str:
        """A link within the tab (kind ``""``), to its body (``"body"``) or a table's CSV."""
        query = self.query.query(**changes)
        base = f"/experiments/{self.experiment_id}/performance"
        path = {"": base, "body": f"{base}/body"}.get(kind, f"{base}/{kind}.csv")
        return path + (f"?{urlencode(query)}" if query else "")

    @property
    def model(self) -> dict[str, Any] | None:
        return next((m for m in self.models if m["model"] == self.query.model), None)


async def load_models(api: Api, experiment_id: str) -> list[dict[str, Any]]:
    answer = await api.get_or_none(f"/experiment/{experiment_id}/performance/models")
    # None: a backend without the route, nothing to pick.
    return list((answer or {}).get("items", []))


async def fetch(api: Api, experiment_id: str, query: PerformanceQuery) -> dict[str, Any]:
    answer: dict[str, Any] = await api.get(
        f"/experiment/{experiment_id}/performance", params=query.api_params()
    )
    return answer


async def load(api: Api, experiment_id: str, query: PerformanceQuery) -> Board:
    models = await load_models(api, experiment_id)
    if not query.model and models:
        query.model = models[0]["model"]
    board = Board(experiment_id, query, models)
    if not query.model:
        return board
    try:
        board.answer = await fetch(api, experiment_id, query)
    except ApiError as exc:
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        board.error = exc.detail
        return board
    answer = board.answer
    board.metric = tables.pick_metric(answer, query.metric)
    board.metrics = list(
        dict.fromkeys(tables.metric_names(answer) + tables.estimated_names(answer))
    )
    board.window = tables.pick_window(answer, query.at)
    board.matrix_windows = tables.matrix_windows(answer)
    board.tables = {
        "metric": tables.metric_table(answer, board.metric),
        "coverage": tables.coverage_table(answer),
        "metrics": tables.all_metrics_table(answer),
        "decisions": tables.decisions_table(answer),
        "confusion": tables.confusion_table(board.window),
    }
    return board


def _render_body(request: Request, board: Board, name: str, **context: Any) -> Response:
    return render(request, name, board=board, num=number, raw=tables.raw, **context)


@router.get("/experiments/{experiment_id}/performance")
async def performance_page(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    experiment_id: ExperimentId,
    query: QueryDep,
) -> Response:
    scope, board = await asyncio.gather(
        load_scope(api, session, experiment_id), load(api, experiment_id, query)
    )
    return render_in(
        request,
        scope,
        "performance/index.html",
        section="performance",
        title=f"Performance · {scope.experiment['name']}",
        board=board,
        num=number,
        raw=tables.raw,
    )


@router.get("/experiments/{experiment_id}/performance/body")
async def performance_body(
    request: Request, api: ApiDep, experiment_id: ExperimentId, query: QueryDep
) -> Response:
    """The tab's body alone: what the live updates swap in when a window changes."""
    # The experiment first: one the caller cannot read is the backend's 404 here too (the
    # models route's 404 alone reads as "no models").
    _, board = await asyncio.gather(
        api.get(f"/experiment/{experiment_id}"), load(api, experiment_id, query)
    )
    return _render_body(request, board, "performance/_body.html")


@router.get("/experiments/{experiment_id}/performance/{kind}.csv")
async def performance_csv(
    api: ApiDep,
    experiment_id: ExperimentId,
    kind: Literal["metric", "coverage", "metrics", "decisions", "confusion"],
    query: QueryDep,
) -> Response:
    """A table's numbers as CSV: the same table the page shows, from the same answer."""
    if not query.model:
        query.model = next(iter(m["model"] for m in await load_models(api, experiment_id)), "")
    if not query.model:
        return Response("no model has predictions\n", status_code=404, media_type="text/plain")
    answer = await fetch(api, experiment_id, query)
    table = tables.build(answer, kind, query.metric, query.at)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in query.model)[:60]
    return Response(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="performance-{safe}-{kind}.csv"',
        },
    )
