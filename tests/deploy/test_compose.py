"""Compose files cannot run here (no Docker engine), so they are checked statically: what
is published, what is secret, what production mode gets, and that the files they name exist."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yml").read_text())
    return data


def test_only_the_proxy_publishes_ports() -> None:
    services = _compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"traefik"}


def test_mongodb_is_on_an_internal_network_with_auth_from_secrets() -> None:
    compose = _compose()
    mongodb = compose["services"]["mongodb"]
    assert mongodb["networks"] == ["data"]
    assert compose["networks"]["data"]["internal"] is True
    env = mongodb["environment"]
    assert env["MONGO_INITDB_ROOT_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "MONGO_INITDB_ROOT_PASSWORD" not in env


def test_backend_runs_in_production_mode_with_secret_database_url() -> None:
    backend = _compose()["services"]["backend"]
    assert backend["environment"]["DRIFT_MODE"] == "production"
    assert "DRIFT_MONGODB_URL" not in backend["environment"]
    assert "mongodb_url" in backend["secrets"]
    assert "${DRIFT_TRUSTED_ISSUERS:?" in backend["environment"]["DRIFT_TRUSTED_ISSUERS"]
    assert (ROOT / backend["build"]["dockerfile"]).exists()


def test_workers_run_the_job_queue_beside_the_backend() -> None:
    worker = _compose()["services"]["worker"]
    assert worker["command"][:2] == ["drift-monitor-server", "worker"]
    assert worker["networks"] == ["data"]  # the database only: no proxy, no ports
    assert worker["environment"]["DRIFT_MODE"] == "production"
    assert "mongodb_url" in worker["secrets"]


def test_every_referenced_secret_and_file_exists_or_is_generated(tmp_path: Path) -> None:
    compose = _compose()
    declared = compose["secrets"]
    for service in compose["services"].values():
        for name in service.get("secrets", []):
            assert name in declared
    for volume in [v for s in compose["services"].values() for v in s.get("volumes", [])]:
        source = volume.split(":")[0]
        if source.startswith("./") and not source.startswith("./secrets"):
            assert (ROOT / source).exists(), source

    # The generator creates exactly the files compose mounts, private to their owner.
    shutil.copy(ROOT / "secrets" / "generate.sh", tmp_path / "generate.sh")
    subprocess.run(["bash", str(tmp_path / "generate.sh")], check=True, capture_output=True)
    for secret in declared.values():
        path = tmp_path / Path(secret["file"]).name
        assert path.exists(), path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    password = (tmp_path / "mongodb_app_password").read_text()
    assert password in (tmp_path / "mongodb_url").read_text()
    assert "dev-only-" not in (tmp_path / "mongodb_url").read_text()

    before = (tmp_path / "mongodb_url").read_text()
    again = subprocess.run(
        ["bash", str(tmp_path / "generate.sh")], check=True, capture_output=True, text=True
    )
    assert "keep" in again.stdout
    assert (tmp_path / "mongodb_url").read_text() == before


def test_secrets_folder_is_gitignored() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "secrets/mongodb_url", "secrets/tls/key.pem"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert ignored == ["secrets/mongodb_url", "secrets/tls/key.pem"]


def test_traefik_routes_api_and_health_to_the_backend_with_tls() -> None:
    dynamic = yaml.safe_load((ROOT / "reverse-proxy" / "dynamic" / "routes.yml").read_text())
    router = dynamic["http"]["routers"]["backend"]
    assert "PathPrefix(`/api`)" in router["rule"]
    assert router["entryPoints"] == ["websecure"]
    assert "tls" in router
    servers = dynamic["http"]["services"]["backend"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://backend:8000"}]
    assert dynamic["tls"]["options"]["default"]["minVersion"] == "VersionTLS12"
