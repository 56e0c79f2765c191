"""Dashboard settings: environment and secret files, and production's refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from drift_backend import settings as backend_settings
from drift_backend.settings import load_settings as load_backend_settings
from drift_dashboard import settings as dashboard_settings
from drift_dashboard.app import create_app
from drift_dashboard.settings import ConfigurationError, Mode, load_settings

GOOD = {
    "mode": "production",
    "public_url": "https://drift.example.org/",
    "api_url": "http://backend:8000",
    "issuer": "https://login.example.org/realms/x",
    "client_secret": "a-real-secret-from-the-provider",
    "mongodb_url": "mongodb://mongo:27017",
}


def test_a_sound_production_configuration_passes() -> None:
    settings = load_settings(**GOOD)
    settings.check()
    assert settings.public_url == "https://drift.example.org"
    assert settings.cookie_name == "__Host-drift_session"
    assert settings.public_origin == "https://drift.example.org"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"client_secret": "dev-only-client-secret"}, "CLIENT_SECRET is a development-only"),
        ({"client_secret": ""}, "CLIENT_SECRET is empty"),
        ({"mongodb_url": "mongodb://dev-only-x@h/"}, "MONGODB_URL is a development-only"),
        ({"public_url": "http://drift.example.org"}, "PUBLIC_URL is not an https://"),
        ({"issuer": "http://login.example.org"}, "ISSUER is not an https://"),
    ],
)
def test_production_refuses_development_settings(change: dict[str, str], problem: str) -> None:
    settings = load_settings(**{**GOOD, **change})
    with pytest.raises(ConfigurationError) as info:
        settings.check()
    assert any(problem in text for text in info.value.problems)
    # The app refuses to be built with it, too.
    with pytest.raises(ConfigurationError):
        create_app(settings)


def test_development_mode_accepts_the_sandbox_client() -> None:
    settings = load_settings(
        mode="development", public_url="http://127.0.0.1:8000", client_secret="dev-only-x"
    )
    settings.check()
    assert settings.cookie_name == "drift_session"


def test_environment_and_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "client_secret").write_text("from-a-file\n")
    monkeypatch.setenv("DRIFT_DASHBOARD_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFT_DASHBOARD_MODE", "development")
    monkeypatch.setenv("DRIFT_DASHBOARD_ISSUER", "http://127.0.0.1:9400/")
    monkeypatch.setenv("DRIFT_DASHBOARD_SESSION_LIFETIME_SECONDS", "600")
    settings = load_settings()
    assert settings.mode is Mode.development
    assert settings.issuer == "http://127.0.0.1:9400"
    assert settings.session_lifetime_seconds == 600
    assert settings.client_secret.get_secret_value().strip() == "from-a-file"
    assert "from-a-file" not in repr(settings)


# The backend's and the dashboard's settings repeat the same rules (the dashboard's
# settings.py says why they are not shared): one test holds both to them.
@pytest.mark.parametrize(
    ("load", "prefix"),
    [
        pytest.param(load_backend_settings, "DRIFT_", id="backend"),
        pytest.param(load_settings, "DRIFT_DASHBOARD_", id="dashboard"),
    ],
)
def test_both_services_read_secret_files_and_refuse_development_secrets(
    load: Callable[..., Any], prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A secret file named after the setting, without the prefix, in <PREFIX>SECRETS_DIR.
    (tmp_path / "mongodb_url").write_text("mongodb://dev-only-sandbox@mongo:27017/\n")
    monkeypatch.setenv(f"{prefix}SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv(f"{prefix}MODE", "production")
    settings = load()
    assert "dev-only-sandbox" in settings.mongodb_url.get_secret_value()
    assert "dev-only-sandbox" not in repr(settings)
    with pytest.raises(RuntimeError) as info:
        settings.check()
    problems: list[str] = info.value.problems  # type: ignore[attr-defined]
    assert any(f"{prefix}MONGODB_URL is a development-only" in text for text in problems)
    assert str(info.value).startswith("refusing to start in production mode: ")
    # Development mode takes the sandbox's secrets.
    monkeypatch.setenv(f"{prefix}MODE", "development")
    load().check()


def test_the_copied_constants_agree() -> None:
    assert backend_settings.DEV_SECRET_MARKER == dashboard_settings.DEV_SECRET_MARKER
    assert [m.value for m in backend_settings.Mode] == [m.value for m in dashboard_settings.Mode]
