"""Scripts written for PyPI's drift-monitor==1.1.1 (KIT drift-watch) work against our server.

The legacy client lives in its own virtualenv (its import name equals ours). It gets its
access token the only way it knows: a MyToken exchange, answered here by the test issuer.
Nothing on our server is patched for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import venv
from pathlib import Path

import httpx2
import pytest

from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

ROOT = Path(__file__).resolve().parents[2]
LEGACY_VENV = ROOT / ".legacy-venv"
LEGACY_REQUIREMENT = "drift-monitor==1.1.1"


def _legacy_python() -> Path:
    python = LEGACY_VENV / "bin" / "python"
    marker = LEGACY_VENV / "installed.txt"
    if not (python.exists() and marker.exists() and marker.read_text() == LEGACY_REQUIREMENT):
        venv.create(LEGACY_VENV, with_pip=True, clear=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                LEGACY_REQUIREMENT,
            ],
            check=True,
        )
        marker.write_text(LEGACY_REQUIREMENT)
    return python


@pytest.fixture(scope="module")
def legacy_python() -> Path:
    return _legacy_python()


def test_legacy_client_runs_unchanged(
    legacy_python: Path, live_backend: ThreadedServer, issuer: JWTIssuer
) -> None:
    subject = f"legacy-{uuid.uuid4().hex[:8]}"
    name = f"legacy-exp-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DRIFT_MONITOR_URL": live_backend.url,
        "DRIFT_MONITOR_MYTOKEN": f"mt-{subject}",
        "MYTOKEN_SERVER": issuer.url,
        "TESTING": "true",
    }
    result = subprocess.run(
        [str(legacy_python), str(Path(__file__).with_name("legacy_script.py")), name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["created_id"] == seen["found_id"]
    assert seen["failure"] == "detector crashed"
    assert seen["duplicate"] == "Experiment already exists."

    headers = {"Authorization": f"Bearer {issuer.token(subject)}"}
    with httpx2.Client(base_url=f"{live_backend.url}/api/v1", headers=headers) as http:
        me = http.get("/user/self").json()
        assert seen["permissions"] == [{"entity": me["id"], "level": "Manage"}]
        runs = http.post(
            f"/experiment/{seen['found_id']}/drift/search",
            params={"sort_by": "created_at", "order_by": "asc"},
            json={},
        ).json()
    assert [run["job_status"] for run in runs] == ["Completed", "Failed"]
    completed, failed = runs
    assert completed["drift_detected"] is True
    assert completed["parameters"] == {"p_value": 0.01, "sizes": [1, 2, 3]}
    assert completed["tags"] == ["legacy"]
    assert completed["finished_at"] is not None
    assert failed["drift_detected"] is False


def test_legacy_python_is_isolated(legacy_python: Path) -> None:
    """The legacy client is the PyPI 1.1.1 release, not our SDK of the same import name."""
    out = subprocess.run(
        [
            str(legacy_python),
            "-c",
            "import importlib.metadata as m; print(m.version('drift-monitor'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "1.1.1"
    assert not str(legacy_python).startswith(sys.prefix)
