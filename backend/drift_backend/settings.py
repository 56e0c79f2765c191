"""Service settings: environment variables (prefix ``DRIFT_``) and secret files.

Secret files live in ``DRIFT_SECRETS_DIR`` (``/run/secrets`` by default, as Docker secrets
mount them); a file named after a setting (``mongodb_url``) provides its value. The settings
object is created once in the entry point and injected; nothing imports a global instance.
The dashboard's settings (frontend/drift_dashboard/settings.py) repeat the secret files and
the production refusal on purpose (it says why); one test checks both.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

#: Values of development-only secrets start with this marker; production refuses them.
DEV_SECRET_MARKER = "dev-only-"  # noqa: S105 (a marker, not a secret)

DEFAULT_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "EdDSA",
]
ASYMMETRIC_ALGORITHMS = frozenset(DEFAULT_ALGORITHMS) | {"ES512", "Ed25519"}


class Mode(StrEnum):
    development = "development"
    production = "production"


def _split_list(value: object) -> object:
    """Accept JSON lists and comma- or space-separated strings for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part for part in text.replace(",", " ").split() if part]
    return value


ListSetting = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFT_",
        extra="ignore",
    )

    mode: Mode = Mode.production

    # Storage
    mongodb_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017")
    mongodb_database: str = "drift_monitor"
    #: The longest any one MongoDB operation may take, all of it: finding the server,
    #: a pooled connection, connecting, the server's work and the driver's retry. A stopped
    #: or unreachable database answers 503 within about this long instead of hanging
    #: requests. At least 0.5 s: change-stream reads wait up to 0.2 s on the server.
    mongodb_timeout_seconds: float = Field(default=5.0, ge=0.5, le=300)

    # Authentication
    trusted_issuers: ListSetting = Field(default_factory=list)
    audience: str | None = None
    algorithms: ListSetting = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    entitlements_claim: str = "eduperson_entitlement"
    user_entitlements: ListSetting = Field(default_factory=list)
    admin_entitlements: ListSetting = Field(default_factory=list)
    require_email_verified: bool = False
    userinfo_cache_seconds: float = Field(default=60.0, ge=0)
    jwks_cache_seconds: float = Field(default=300.0, ge=0)
    #: Minimum time between JWKS re-fetches triggered by an unknown key id (rotation).
    jwks_refresh_min_seconds: float = Field(default=10.0, ge=0)
    issuer_timeout_seconds: float = Field(default=5.0, gt=0)
    #: Allow plain-HTTP issuers (development and tests only).
    allow_insecure_issuers: bool = False

    #: How long start-up waits for the indexes before serving (readiness says 503 meanwhile).
    startup_index_wait_seconds: float = Field(default=10.0, ge=0)

    #: How long a registered user's record is reused between requests (0 turns it off).
    user_cache_seconds: float = Field(default=5.0, ge=0)

    # Drift runs
    run_timeout_seconds: float = Field(default=3600.0, gt=0)
    #: How far back a client may date a run it reports late (``created_at``/``finished_at``,
    #: e.g. a spool replayed after an outage).
    max_backdate_days: float = Field(default=7.0, ge=0)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)

    # Drift checks
    #: Run a worker inside the API process (the local stack does; production runs
    #: ``drift-monitor-server worker`` as its own service).
    embedded_worker: bool = False
    worker_processes: int = Field(default=1, ge=1, le=64)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1, le=20)
    #: Keep uploaded check batches after their job ends (default: dropped at once).
    keep_batches: bool = False
    max_check_wait_seconds: float = Field(default=60.0, ge=0)
    #: Numerical baseline features with at most this many finite values keep them all, so
    #: the tests on whole samples (KS, Cramér-von Mises, ...) give scipy's exact results.
    exact_reference_rows: int = Field(default=10_000, ge=0)
    #: Wake workers and waiting requests with change streams when the server has them
    #: (a replica set); off, or on a standalone mongod, they poll.
    change_streams: bool = True

    # Event streams (GET /api/v1/events)
    #: How long events are kept for replay after ``Last-Event-ID`` (a TTL on each event).
    events_ttl_seconds: float = Field(default=24 * 3600.0, ge=1)
    #: A ``: ping`` comment goes out on a stream that has had nothing else for this long.
    events_keepalive_seconds: float = Field(default=15.0, gt=0)
    #: How often the shared tailer looks for new events (at once on a change stream's ring).
    events_poll_seconds: float = Field(default=0.5, gt=0)
    #: Events waiting for one slow client; one more and its stream is closed (it reconnects
    #: with ``Last-Event-ID`` and replays).
    events_queue_size: int = Field(default=1000, ge=1)
    #: Open streams per process; one more is answered 503 with ``Retry-After``.
    events_max_streams: int = Field(default=1000, ge=1)
    #: How long a stream reuses a read-permission decision on an experiment.
    events_permission_cache_seconds: float = Field(default=5.0, ge=0)

    # Model performance monitoring (perfmon part; docs/performance.md)
    #: Rows per predictions, ground-truth or reference batch (the SDK splits larger ones).
    performance_max_batch_rows: int = Field(default=10_000, gt=0)
    #: A window whose labelled share of predictions is below this is marked incomplete.
    performance_min_coverage: float = Field(default=0.8, ge=0, le=1)
    #: Predictions still without a label are deleted this long after they were received.
    performance_unlabelled_ttl_seconds: float = Field(default=30 * 86400.0, gt=0)
    #: A complete window is "degraded" when its accuracy is below the reference's by more
    #: than this, with a one-sided two-proportion test's p-value under the alpha below.
    performance_tolerance: float = Field(default=0.02, ge=0, le=1)
    performance_alpha: float = Field(default=0.05, gt=0, lt=1)

    # Limits
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    #: Baseline and check uploads (data batches) may be this large.
    max_upload_bytes: int = Field(default=268_435_456, gt=0)
    max_batch_rows: int = Field(default=10_000_000, gt=0)
    max_batch_columns: int = Field(default=1000, gt=0)
    max_page_size: int = Field(default=100, gt=0, le=1000)
    max_filter_depth: int = Field(default=6, gt=0)
    max_filter_nodes: int = Field(default=100, gt=0)

    # Logging
    log_level: str = "info"

    @field_validator("trusted_issuers")
    @classmethod
    def _strip_issuer_slash(cls, value: list[str]) -> list[str]:
        return [issuer.rstrip("/") for issuer in value]

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(
                f"only asymmetric signature algorithms are allowed, not {', '.join(bad)}"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secret files are named after the setting without the prefix (/run/secrets/mongodb_url),
        # as Docker secrets are usually named.
        secrets_dir = Path(os.environ.get("DRIFT_SECRETS_DIR", "/run/secrets"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if secrets_dir.is_dir():
            sources.append(
                SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, env_prefix="")
            )
        return tuple(sources)

    @property
    def is_development(self) -> bool:
        return self.mode is Mode.development

    def production_problems(self) -> list[str]:
        """Reasons this configuration must not run in production mode (empty when fine)."""
        problems: list[str] = []
        if not self.trusted_issuers:
            problems.append("DRIFT_TRUSTED_ISSUERS is empty: no token could ever be verified")
        for issuer in self.trusted_issuers:
            if not issuer.startswith("https://"):
                problems.append(f"trusted issuer {issuer!r} is not an https:// URL")
        if DEV_SECRET_MARKER in self.mongodb_url.get_secret_value():
            problems.append("DRIFT_MONGODB_URL is a development-only secret from sandbox/")
        if self.allow_insecure_issuers:
            problems.append("DRIFT_ALLOW_INSECURE_ISSUERS is set")
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


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and secret files, with explicit overrides."""
    return Settings(**overrides)
