"""What the dashboard's routes share, built at start-up: one per app, never a global."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import StarletteOAuth2App
from fastapi.templating import Jinja2Templates
from pymongo import AsyncMongoClient

from drift_dashboard.api import BackendClient
from drift_dashboard.oidc import TokenKeeper
from drift_dashboard.sessions import SessionStore
from drift_dashboard.settings import DashboardSettings


@dataclass
class DashboardContext:
    settings: DashboardSettings
    templates: Jinja2Templates
    oauth: StarletteOAuth2App
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    store: SessionStore | None = None
    keeper: TokenKeeper | None = None
    backend: BackendClient | None = None

    def session_store(self) -> SessionStore:
        if self.store is None:
            raise RuntimeError("the dashboard has not started (its lifespan did not run)")
        return self.store
