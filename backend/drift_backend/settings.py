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

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
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
#: Production's shortest /metrics token (``secrets/generate.sh`` makes 43 characters).
MIN_METRICS_TOKEN_LENGTH = 16


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
#: notify/: a list of numbers, given the same ways.
FloatListSetting = Annotated[list[float], NoDecode, BeforeValidator(_split_list)]


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
    # The allocator keeps up to this much freed memory (MiB) for reuse in the API,
    # worker and statistics processes (drift_backend.memory); 0 leaves it alone.
    retain_freed_memory_mb: int = Field(default=512, ge=0)
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

    # Alert targets and notification delivery (notify/)
    #: Networks (CIDR) and host names outbound requests may reach although they are not
    #: globally routable (an Alertmanager inside the cluster, a receiver on loopback); they
    #: may also be plain http outside development (alertmanager and webhook targets).
    outbound_allow: ListSetting = Field(default_factory=list)
    #: The dashboard's public base URL, for the run links in notifications (none: no links).
    public_base_url: str | None = None
    #: Deliver queued notifications in every worker (beside the job runner).
    delivery_enabled: bool = True
    #: Deliveries one worker sends at once.
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    #: A claimed delivery is another worker's to send again after this long (a killed worker).
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    #: Waits before each retry (the Standard Webhooks schedule), each with +-20 % jitter;
    #: after the last the delivery has failed.
    delivery_retry_seconds: FloatListSetting = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    #: No retry is made later than this after the notification was queued.
    delivery_max_age_seconds: float = Field(default=24 * 3600.0, gt=0)
    delivery_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    delivery_read_timeout_seconds: float = Field(default=10.0, gt=0)
    #: All of one request: connecting, sending, the answer.
    delivery_total_timeout_seconds: float = Field(default=15.0, gt=0)
    #: How much of a receiver's answer is read (the rest is dropped unread).
    delivery_max_response_bytes: int = Field(default=65_536, ge=1)
    #: Slack takes one message per second per incoming webhook.
    delivery_slack_interval_seconds: float = Field(default=1.0, ge=0)
    # Alerts: how often each worker looks for alert groups whose time
    # has come (group_wait, repeat_interval, keep_firing_for, no_run deadlines, silences).
    alerts_tick_seconds: float = Field(default=5.0, gt=0, le=3600)
    # Model performance monitoring (docs/performance.md)
    #: Rows per predictions, ground-truth or reference batch (the SDK splits larger ones).
    performance_max_batch_rows: int = Field(default=10_000, gt=0)
    #: Classes of a classification model: an hour's document keeps a confusion cell per
    #: pair of labels and ROC score counts per class (100 classes: about 6 MB at most).
    performance_max_classes: int = Field(default=100, ge=2, le=400)
    #: A window whose labelled share of predictions is below this is marked incomplete.
    performance_min_coverage: float = Field(default=0.8, ge=0, le=1)
    #: Predictions still without a label are deleted this long after they were received.
    performance_unlabelled_ttl_seconds: float = Field(default=30 * 86400.0, gt=0)
    #: A complete window is "degraded" when its accuracy is below the reference's by more
    #: than this, with a one-sided two-proportion test's p-value under the alpha below.
    performance_tolerance: float = Field(default=0.02, ge=0, le=1)
    performance_alpha: float = Field(default=0.05, gt=0, lt=1)
    # Performance decisions (docs/performance.md "Degraded windows")
    #: A regression window is degraded when its MAE (RMSE) exceeds the reference's times
    #: 1 + this, with a one-sided bootstrap-interval test under performance_alpha.
    performance_regression_tolerance: float = Field(default=0.1, ge=0, le=100)
    #: The window a change of decision is recorded for, as a concept-drift run.
    performance_decision_window: str = Field(default="day", pattern="^(hour|day|week)$")
    #: How often each worker looks for batches a dead applier left unapplied (and
    #: decisions whose run is unwritten).
    performance_tick_seconds: float = Field(default=60.0, gt=0, le=3600)

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

    # Prometheus /metrics (metrics/; docs/metrics.md)
    #: The bearer token a scraper sends to ``/metrics`` (secret file ``metrics_token``).
    #: Production refuses to start without one; in development ``/metrics`` is open without.
    metrics_token: SecretStr | None = None
    #: A file holding that token, for a secret mounted elsewhere than DRIFT_SECRETS_DIR (the
    #: same file Prometheus' ``bearer_token_file`` reads); read once at start-up.
    metrics_token_file: Path | None = None
    #: How long a scrape's MongoDB readings are reused: scrapes of several Prometheus
    #: servers (or a short interval) within it cost the database nothing more.
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    #: The whole MongoDB part of one scrape gets this long; then ``drift_monitor_up 0``.
    metrics_read_timeout_seconds: float = Field(default=5.0, gt=0)
    #: Caps on one scrape's drift series: experiments (by name), models per experiment
    #: (most recently checked first) and features per (experiment, model) (drifted first).
    metrics_max_experiments: int = Field(default=500, ge=1)
    metrics_max_models: int = Field(default=50, ge=1)
    metrics_max_features: int = Field(default=100, ge=0)

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

    @model_validator(mode="after")
    def _read_metrics_token(self) -> Settings:
        text = self.metrics_token.get_secret_value() if self.metrics_token is not None else ""
        if not text.strip() and self.metrics_token_file is not None:
            try:
                text = self.metrics_token_file.read_text(encoding="utf-8")
            except OSError as error:
                raise ValueError(f"metrics_token_file: cannot read it ({error})") from None
        # A file's trailing newline is no part of the token; an empty one is no token.
        text = text.strip()
        self.metrics_token = SecretStr(text) if text else None
        return self

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
        # Prometheus /metrics (metrics/): never open in production.
        metrics_token = self.metrics_token.get_secret_value() if self.metrics_token else ""
        if len(metrics_token) < MIN_METRICS_TOKEN_LENGTH:
            problems.append(
                "DRIFT_METRICS_TOKEN (secret file metrics_token) is missing or shorter than "
                f"{MIN_METRICS_TOKEN_LENGTH} characters: /metrics would be open"
            )
        elif DEV_SECRET_MARKER in metrics_token:
            problems.append("DRIFT_METRICS_TOKEN is a development-only secret from sandbox/")
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
