"""An experiment's baselines: the list, one baseline's per-feature summary, and its SageMaker
Model Monitor files (``statistics.json``, ``constraints.json``) relayed from the backend with
the user's token, so a download link works in the browser without exposing the token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from drift_dashboard.deps import ApiDep, SessionDep
from drift_dashboard.pages.charts import number
from drift_dashboard.pages.scope import BaselineId, ExperimentId, load_scope, render_in

router = APIRouter()
SAGEMAKER_FILES = ("statistics.json", "constraints.json")


@router.get("/experiments/{experiment_id}/baselines")
async def list_baselines(
    request: Request, api: ApiDep, session: SessionDep, experiment_id: ExperimentId
) -> Response:
    scope = await load_scope(api, session, experiment_id)
    baselines = await api.get(f"/experiment/{experiment_id}/baseline")
    defaults = {d["baseline_id"]: d["model"] for d in scope.experiment.get("default_baselines", [])}
    return render_in(
        request,
        scope,
        "baselines/list.html",
        section="baselines",
        title=f"Baselines · {scope.experiment['name']}",
        baselines=baselines,
        defaults=defaults,
    )


@router.get("/experiments/{experiment_id}/baselines/{baseline_id}")
async def show_baseline(
    request: Request,
    api: ApiDep,
    session: SessionDep,
    experiment_id: ExperimentId,
    baseline_id: BaselineId,
) -> Response:
    scope = await load_scope(api, session, experiment_id)
    baseline = await api.get(f"/experiment/{experiment_id}/baseline/{baseline_id}")
    return render_in(
        request,
        scope,
        "baselines/show.html",
        section="baselines",
        title=f"Baseline {baseline.get('name') or baseline['id']}",
        baseline=baseline,
        files=SAGEMAKER_FILES,
        num=number,
    )


@router.get("/experiments/{experiment_id}/baselines/{baseline_id}/{name}")
async def download(
    api: ApiDep,
    experiment_id: ExperimentId,
    baseline_id: BaselineId,
    name: Literal["statistics.json", "constraints.json"],
) -> Response:
    answer = await api.request("GET", f"/experiment/{experiment_id}/baseline/{baseline_id}/{name}")
    return Response(
        answer.content,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{baseline_id}-{name}"',
            "Cache-Control": "private, no-store",
        },
    )
