"""Jinja2 (autoescape on) and :func:`render`, which gives every template the CSRF token, the
logged-in user and the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from drift_dashboard.sessions import Session

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    session: Session = request.scope["drift_session"]
    templates: Jinja2Templates = request.app.state.dashboard.templates
    values = {
        "csrf_token": session.csrf_token,
        "user": session.user,
        "title": None,
        **context,
    }
    return templates.TemplateResponse(request, name, values, status_code=status_code)
