"""Settings from the environment, read when a client is built (never at import)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from drift_monitor._exceptions import ConfigurationError

__all__ = ["Settings", "spool_settings"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_MYTOKEN_SERVER = "https://mytok.eu"
API_PREFIX = "/api/v1"
DEFAULT_SPOOL_MAX_BYTES = 100_000_000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Client settings; ``from_env`` fills what was not given explicitly."""

    url: str
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    ca_bundle: str | None = None
    insecure: bool = False

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + API_PREFIX

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx2 should use to verify TLS (on unless explicitly disabled)."""
        if self.insecure:
            return False
        if self.ca_bundle:
            try:
                return ssl.create_default_context(cafile=self.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(
                    f"DRIFT_MONITOR_CA_BUNDLE {self.ca_bundle!r} is not a readable CA bundle: {exc}"
                ) from exc
        return True

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        ca_bundle: str | None = None,
        insecure: bool | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        url = url or env.get("DRIFT_MONITOR_URL")
        if not url:
            raise ConfigurationError(
                "no server URL: set DRIFT_MONITOR_URL (e.g. https://drift.example.org) "
                "or pass base_url= to Client"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"server URL must start with http:// or https://: {url!r}")
        return cls(
            url=url.rstrip("/"),
            timeout=timeout if timeout is not None else _number(env, "DRIFT_MONITOR_TIMEOUT"),
            retries=retries if retries is not None else _count(env, "DRIFT_MONITOR_RETRIES"),
            ca_bundle=ca_bundle or env.get("DRIFT_MONITOR_CA_BUNDLE") or None,
            insecure=insecure if insecure is not None else _flag(env, "DRIFT_MONITOR_INSECURE"),
        )


def _number(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_RETRIES
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, not {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def spool_settings(env: Mapping[str, str] | None = None) -> tuple[Path, int]:
    """``DRIFT_MONITOR_SPOOL_DIR`` and ``DRIFT_MONITOR_SPOOL_MAX_BYTES``, with their defaults."""
    env = os.environ if env is None else env
    raw_dir = env.get("DRIFT_MONITOR_SPOOL_DIR", "").strip()
    directory = (
        Path(raw_dir).expanduser()
        if raw_dir
        else Path(platformdirs.user_cache_dir("drift-monitor", appauthor=False)) / "spool"
    )
    raw = env.get("DRIFT_MONITOR_SPOOL_MAX_BYTES", "").strip()
    if not raw:
        return directory, DEFAULT_SPOOL_MAX_BYTES
    try:
        max_bytes = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"DRIFT_MONITOR_SPOOL_MAX_BYTES must be a whole number of bytes, not {raw!r}"
        ) from None
    if max_bytes < 0:
        raise ConfigurationError(f"DRIFT_MONITOR_SPOOL_MAX_BYTES must not be negative, not {raw!r}")
    return directory, max_bytes
