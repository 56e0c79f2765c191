"""npm-installed assets served from our origin (no CDN): an explicit allow-list of files from
``node_modules``, so nothing else there (and no directory listing) is reachable."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import FileResponse

#: URL name under /static/vendor/ -> (path in node_modules, media type).
VENDOR_FILES: dict[str, tuple[str, str]] = {
    "htmx.min.js": ("htmx.org/dist/htmx.min.js", "text/javascript"),
    "htmx-ext-sse.min.js": ("htmx-ext-sse/dist/sse.min.js", "text/javascript"),
    "uPlot.iife.min.js": ("uplot/dist/uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": ("uplot/dist/uPlot.min.css", "text/css"),
}

router = APIRouter()


@router.get("/static/vendor/{name}", include_in_schema=False)
async def vendor_file(name: str, request: Request) -> FileResponse:
    entry = VENDOR_FILES.get(name)
    if entry is None:
        raise HTTPException(404)
    assets: Path = request.app.state.dashboard.settings.assets_dir
    path = assets / entry[0]
    if not path.is_file():
        raise HTTPException(404, f"{name} is not installed: run 'make frontend-assets'")
    return FileResponse(
        path, media_type=entry[1], headers={"Cache-Control": "public, max-age=3600"}
    )
