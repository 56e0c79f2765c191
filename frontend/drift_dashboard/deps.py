"""FastAPI dependencies as ``Annotated`` aliases, as in the backend's api/deps.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from drift_dashboard.api import Api
from drift_dashboard.context import DashboardContext
from drift_dashboard.sessions import Session
from drift_dashboard.settings import DashboardSettings


class LoginRequired(Exception):
    """The page needs a logged-in user: the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def get_context(request: Request) -> DashboardContext:
    context: DashboardContext = request.app.state.dashboard
    return context


ContextDep = Annotated[DashboardContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> DashboardSettings:
    return context.settings


SettingsDep = Annotated[DashboardSettings, Depends(get_settings)]


async def get_session(request: Request) -> Session:
    session: Session = request.scope["drift_session"]
    return session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_api(context: ContextDep, session: SessionDep) -> Api:
    """The backend as this visitor: their access token (refreshed if due) or anonymous."""
    assert context.keeper is not None
    assert context.backend is not None
    token = await context.keeper.access_token(session)
    return context.backend.bind(token)


ApiDep = Annotated[Api, Depends(get_api)]


async def get_user(session: SessionDep, _api: ApiDep) -> dict[str, Any] | None:
    # Depends on ApiDep so that a session whose tokens could not be renewed is already
    # logged out here.
    return session.user


UserDep = Annotated[dict[str, Any] | None, Depends(get_user)]


async def require_user(request: Request, user: UserDep) -> dict[str, Any]:
    if user is None:
        target = request.url.path
        if request.url.query:
            target += f"?{request.url.query}"
        raise LoginRequired(target if request.method == "GET" else "/")
    return user


LoggedInDep = Annotated[dict[str, Any], Depends(require_user)]
