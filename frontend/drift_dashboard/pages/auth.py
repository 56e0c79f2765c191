"""Login (OIDC authorization code + PKCE), its callback, and logout (local or at the provider).

A login gets a brand-new session (new id, new CSRF token): whatever id a visitor had before
cannot be planted to ride on the login. Tokens stay in the session document.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from authlib.integrations.base_client import OAuthError
from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from drift_dashboard.api import ApiError
from drift_dashboard.deps import ContextDep, SessionDep, UserDep
from drift_dashboard.oidc import stored_tokens
from drift_dashboard.templating import render

router = APIRouter()
NEXT_KEY = "next"


def safe_next(target: str | None) -> str:
    """A local path to return to after login (never another site: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/experiments"
    return target


@router.get("/login")
async def login(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    user: UserDep,
    next: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    target = safe_next(next)
    if user is not None:
        return RedirectResponse(target, status_code=303)
    session.data[NEXT_KEY] = target
    redirect_uri = f"{context.settings.public_url}/auth/callback"
    response: Response = await context.oauth.authorize_redirect(request, redirect_uri)
    return response


@router.get("/auth/callback")
async def callback(request: Request, context: ContextDep, session: SessionDep) -> Response:
    try:
        token = await context.oauth.authorize_access_token(request)
    except OAuthError as exc:
        return render(
            request,
            "errors/error.html",
            status_code=400,
            title="Login failed",
            heading="Login failed",
            text="The login could not be completed. Please try again.",
            detail=exc.description or exc.error or "",
        )
    target = safe_next(session.data.get(NEXT_KEY))
    claims = dict(token.get("userinfo") or {})
    session.regenerate()
    session.user = {
        "sub": claims.get("sub"),
        "name": claims.get("name") or claims.get("preferred_username") or claims.get("sub"),
        "email": claims.get("email"),
    }
    session.tokens = stored_tokens(dict(token))
    assert context.backend is not None
    api = context.backend.bind(session.tokens["access_token"])
    try:
        # The backend knows users once they registered; the dashboard registers on first
        # login (409: already registered).
        await api.post("/user")
    except ApiError as exc:
        if exc.status != 409:
            raise
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(
    context: ContextDep,
    session: SessionDep,
    everywhere: Annotated[str, Form()] = "",
) -> Response:
    """Local logout always; with ``everywhere`` also at the provider (RP-initiated logout)."""
    id_token = (session.tokens or {}).get("id_token")
    session.end()
    home = f"{context.settings.public_url}/experiments"
    if everywhere and id_token:
        metadata = await context.oauth.load_server_metadata()
        endpoint = metadata.get("end_session_endpoint")
        if endpoint:
            query = urlencode(
                {
                    "id_token_hint": id_token,
                    "post_logout_redirect_uri": home,
                    "client_id": context.settings.client_id,
                }
            )
            return RedirectResponse(f"{endpoint}?{query}", status_code=303)
    return RedirectResponse("/experiments", status_code=303)
