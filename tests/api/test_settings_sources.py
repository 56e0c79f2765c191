"""Settings come from DRIFT_* variables and from secret files; variables win."""

from __future__ import annotations

from pathlib import Path

import pytest
from drift_backend.settings import ConfigurationError, load_settings


def test_secret_files_provide_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mongodb_url").write_text("mongodb://drift:s3cret@db:27017/drift")
    monkeypatch.setenv("DRIFT_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("DRIFT_MONGODB_URL", raising=False)
    monkeypatch.setenv("DRIFT_TRUSTED_ISSUERS", "https://a.example/, https://b.example")
    settings = load_settings()
    assert settings.mongodb_url.get_secret_value() == "mongodb://drift:s3cret@db:27017/drift"
    assert settings.trusted_issuers == ["https://a.example", "https://b.example"]
    assert "s3cret" not in repr(settings)


def test_environment_wins_over_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mongodb_url").write_text("mongodb://from-file/")
    monkeypatch.setenv("DRIFT_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFT_MONGODB_URL", "mongodb://from-env/")
    assert load_settings().mongodb_url.get_secret_value() == "mongodb://from-env/"


def test_sandbox_secret_file_refused_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mongodb_url").write_text("mongodb://drift:dev-only-password@127.0.0.1/")
    monkeypatch.setenv("DRIFT_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("DRIFT_MONGODB_URL", raising=False)
    monkeypatch.setenv("DRIFT_TRUSTED_ISSUERS", "https://issuer.example")
    with pytest.raises(ConfigurationError, match="development-only"):
        load_settings(mode="production").check()


def test_missing_secrets_dir_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFT_SECRETS_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("DRIFT_MONGODB_URL", raising=False)
    assert load_settings().mongodb_url.get_secret_value() == "mongodb://127.0.0.1:27017"
