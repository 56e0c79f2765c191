"""Dashboard settings: environment variables (prefix ``DRIFT_DASHBOARD_``) and secret files.

Like the backend's settings: secret files live in ``DRIFT_DASHBOARD_SECRETS_DIR``
(``/run/secrets`` by default) and are named after the setting (``client_secret``). The
settings object is created in the entry point and injected; nothing imports a global one.

Why the secret-file source, the ``dev-only-`` marker, ``Mode`` and the production refusal
are written here again rather than imported from ``drift_backend.settings``: the dashboard is
a distribution of its own (``drift-dashboard``) that is deployed without the backend (whose
dependencies are numpy, scipy, pyarrow...), so it imports nothing of it
(tests/dashboard/test_pages.py checks that), and the backend may not import the dashboard
(an import-linter contract). A third package for some thirty lines would cost a workspace
member and a lockfile entry. The copies are kept equal by one test that runs both services'
settings through the same cases (tests/dashboard/test_settings.py,
``test_both_services_read_secret_files_and_refuse_development_secrets``).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

#: Development-only secrets (``sandbox/``) carry this marker; production refuses them.
DEV_SECRET_MARKER = "dev-only-"  # noqa: S105 (a marker, not a secret)

#: Where ``npm ci`` puts the front-end assets (frontend/node_modules beside the package).
DEFAULT_ASSETS_DIR = Path(__file__).resolve().parent.parent / "node_modules"


class Mode(StrEnum):
    development = "development"
    production = "production"


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFT_DASHBOARD_", extra="ignore")

    mode: Mode = Mode.production

    #: The dashboard's own external URL (scheme, host, port; no trailing slash): the OIDC
    #: redirect URI is built from it and the CSRF Origin check compares against it.
    public_url: str = "http://127.0.0.1:8000"
    #: The backend's base URL (without ``/api/v1``).
    api_url: str = "http://127.0.0.1:8000"
    #: The API's URL as clients outside see it, for the account page's snippet (default:
    #: ``public_url``, where the API is served beside the dashboard).
    api_public_url: str | None = None
    api_timeout_seconds: float = Field(default=30.0, gt=0)

    # OpenID Connect
    issuer: str = "http://127.0.0.1:9400"
    client_id: str = "drift-dashboard"
    client_secret: SecretStr = SecretStr("")
    #: Refresh the access token when it expires within this many seconds.
    refresh_leeway_seconds: float = Field(default=60.0, ge=0)

    # Sessions
    mongodb_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    mongodb_database: str = "drift_monitor"
    mongodb_timeout_seconds: float = Field(default=5.0, ge=0.5, le=300)
    #: A session ends this long after it was last used (sliding), at most.
    session_lifetime_seconds: int = Field(default=8 * 3600, ge=60)

    #: The npm-installed assets (``npm ci`` in frontend/).
    assets_dir: Path = DEFAULT_ASSETS_DIR

    @field_validator("public_url", "api_url", "issuer")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_dir = Path(os.environ.get("DRIFT_DASHBOARD_SECRETS_DIR", "/run/secrets"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if secrets_dir.is_dir():
            sources.append(
                SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, env_prefix="")
            )
        return tuple(sources)

    @property
    def is_development(self) -> bool:
        return self.mode is Mode.development

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``, as browsers send it in ``Origin``."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def client_url(self) -> str:
        return (self.api_public_url or self.public_url).rstrip("/")

    @property
    def cookie_name(self) -> str:
        # __Host- makes the browser insist on Secure, Path=/ and no Domain; plain http on
        # loopback (development) cannot be Secure, so it gets a plain name there.
        return "drift_session" if self.is_development else "__Host-drift_session"

    def production_problems(self) -> list[str]:
        """Reasons this configuration must not run in production mode (empty when fine)."""
        problems: list[str] = []
        if not self.public_url.startswith("https://"):
            problems.append("DRIFT_DASHBOARD_PUBLIC_URL is not an https:// URL")
        if not self.issuer.startswith("https://"):
            problems.append("DRIFT_DASHBOARD_ISSUER is not an https:// URL")
        secret = self.client_secret.get_secret_value()
        if not secret:
            problems.append("DRIFT_DASHBOARD_CLIENT_SECRET is empty")
        for name, value in (("CLIENT_SECRET", secret), ("MONGODB_URL", self.mongodb_url)):
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if DEV_SECRET_MARKER in text:
                problems.append(f"DRIFT_DASHBOARD_{name} is a development-only secret")
        return problems

    def check(self) -> None:
        """Refuse to run a production configuration that is not fit for production."""
        if self.mode is Mode.production:
            problems = self.production_problems()
            if problems:
                raise ConfigurationError(problems)


class ConfigurationError(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("refusing to start in production mode: " + "; ".join(problems))


def load_settings(**overrides: Any) -> DashboardSettings:
    """Read settings from the environment and secret files, with explicit overrides."""
    return DashboardSettings(**overrides)
