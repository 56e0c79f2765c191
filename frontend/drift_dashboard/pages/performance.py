"""The Performance tab of an experiment (issue 10): a model's metrics per window over time
(realised, estimated with its band, the reference), label coverage, the confusion matrix of
one window and the decision of each, every chart with its numbers as a table and a CSV link.

Everything comes from three backend routes: ``GET /experiment/{id}/performance/models`` (the
models to pick), ``GET /experiment/{id}/performance?model&window&from&to`` and, below the
windows, the model's runs with their metrics a keyset page at a time (``GET
.../performance/runs?model&after&before``; the page's ``after``/``before`` are the
backend's cursors, as on the runs table). The choices (model, window, range, metric, the
matrix's window, the runs page) are a GET form or links, so a view is a URL and works
without JavaScript; charts.js draws from the tables. The body refreshes itself on
``performance.window_updated`` events (the event relay, as the runs table does).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
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
#: A backend cursor of the runs table (opaque, a few hundred characters at most).
Cursor = Annotated[str, Query(max_length=1024)]
#: Runs per page of the runs table.
RUNS_PAGE = 20


@dataclass
class PerformanceQuery:
    """The tab's choices as the form sends them, checked; ``errors`` says what was ignored."""

    model: str = ""
    window: str = "day"
    start: str = ""
    end: str = ""
    metric: str = ""
    at: str = ""
    #: The runs table's page: older than the backend's cursor ``after``, or newer than
    #: ``before``; neither: the newest runs.
    after: str = ""
    before: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(
        cls,
        model: str,
        window: str,
        start: str,
        end: str,
        metric: str,
        at: str,
        after: str = "",
        before: str = "",
    ) -> PerformanceQuery:
        out = cls(model=model.strip(), metric=metric.strip(), at=at.strip())
        out.after = after.strip()
        out.before = "" if out.after else before.strip()
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
            "after": self.after,
            "before": self.before,
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
    after: Cursor = "",
    before: Cursor = "",
) -> PerformanceQuery:
    return PerformanceQuery.parse(model, window, start, end, metric, at, after, before)


QueryDep = Annotated[PerformanceQuery, Depends(get_query)]


def tab_url(experiment_id: str, query: PerformanceQuery, kind: str, **changes: str) -> str:
    """A link within the tab (kind ``""``), to its body (``"body"``) or a table's CSV, with
    the query's choices and ``changes`` (an empty value drops one)."""
    params = query.query(**changes)
    base = f"/experiments/{experiment_id}/performance"
    path = {"": base, "body": f"{base}/body"}.get(kind, f"{base}/{kind}.csv")
    return path + (f"?{urlencode(params)}" if params else "")


@dataclass
class RunsPage:
    """A page of the runs table and the links around it (newer, older, the newest, CSV)."""

    table: tables.Table
    next_url: str | None
    previous_url: str | None
    first_url: str | None
    csv_url: str


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
    #: The model's runs with their metrics, one page (None: none to show).
    runs: RunsPage | None = None

    def url(self, kind: str, **changes: str) -> str:
        """A link within the tab (kind ``""``), to its body (``"body"``) or a table's CSV."""
        return tab_url(self.experiment_id, self.query, kind, **changes)

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


async def fetch_runs(
    api: Api, experiment_id: str, query: PerformanceQuery
) -> tuple[dict[str, Any], PerformanceQuery] | None:
    """The page of the model's runs the query asks for, and the query as served (a cursor
    the backend refuses, edited or from another version, gives the newest page); None when
    the backend has none to give (an unknown model: the windows' answer says so)."""
    path = f"/experiment/{experiment_id}/performance/runs"
    params = {"model": query.model, "limit": str(RUNS_PAGE)}
    cursor = {"after": query.after} if query.after else {}
    cursor = cursor or ({"before": query.before} if query.before else {})
    try:
        page: dict[str, Any] = await api.get(path, params={**params, **cursor})
    except ApiError as exc:
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        if exc.status != 422 or not cursor:
            return None
        query = replace(query, after="", before="")
        page = await api.get(path, params=params)
    return page, query


def runs_page(experiment_id: str, query: PerformanceQuery, page: dict[str, Any]) -> RunsPage | None:
    """The runs table of a page, with its links; None when the model has no runs with
    predictions at all (a first page without rows)."""
    paged = bool(query.after or query.before)
    if not page.get("runs") and not paged:
        return None

    def link(**cursor: str) -> str:
        changes = {"after": "", "before": "", **cursor}
        return tab_url(experiment_id, query, "", **changes) + "#perf-runs"

    return RunsPage(
        table=tables.runs_table(page),
        next_url=link(after=page["next"]) if page.get("next") else None,
        previous_url=link(before=page["previous"]) if page.get("previous") else None,
        first_url=link() if paged else None,
        csv_url=tab_url(experiment_id, query, "runs"),
    )


async def load(api: Api, experiment_id: str, query: PerformanceQuery) -> Board:
    models = await load_models(api, experiment_id)
    if not query.model and models:
        query.model = models[0]["model"]
    board = Board(experiment_id, query, models)
    if not query.model:
        return board
    # Independent reads: the tab waits for the slower, not for their sum.
    runs = asyncio.ensure_future(fetch_runs(api, experiment_id, query))
    try:
        board.answer = await fetch(api, experiment_id, query)
    except ApiError as exc:
        runs.cancel()
        if exc.status in (401, 403) or exc.status >= 500:
            raise
        board.error = exc.detail
        return board
    fetched = await runs
    if fetched is not None:
        page, board.query = fetched  # without a cursor the backend refused
        board.runs = runs_page(experiment_id, board.query, page)
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
    kind: Literal["metric", "coverage", "metrics", "decisions", "confusion", "runs"],
    query: QueryDep,
) -> Response:
    """A table's numbers as CSV: the same table the page shows, from the same answer (the
    runs table: the page of runs shown, by its cursor)."""
    if not query.model:
        query.model = next(iter(m["model"] for m in await load_models(api, experiment_id)), "")
    if not query.model:
        return Response("no model has predictions\n", status_code=404, media_type="text/plain")
    if kind == "runs":
        fetched = await fetch_runs(api, experiment_id, query)
        if fetched is None:
            return Response("no such model\n", status_code=404, media_type="text/plain")
        table = tables.runs_table(fetched[0])
    else:
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
