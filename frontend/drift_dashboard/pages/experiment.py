"""One experiment's page: a minimal version (name, visibility, permissions) that the pages
helper replaces with runs, charts and the permissions form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from drift_dashboard.deps import ApiDep
from drift_dashboard.templating import render

router = APIRouter()
ExperimentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]


@router.get("/experiments/{experiment_id}")
async def show_experiment(request: Request, api: ApiDep, experiment_id: ExperimentId) -> Response:
    experiment = await api.get(f"/experiment/{experiment_id}")
    return render(request, "experiment/show.html", title=experiment["name"], experiment=experiment)
