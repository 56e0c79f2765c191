"""The one-command local stack (`make run` = `drift-monitor-server dev`) and the README
quickstart, run as a user would: real processes, real HTTP, the commands pasted from the README."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from drift_backend.devstack.services import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    process: subprocess.Popen[str]
    data_dir: Path
    port: int
    mongo_port: int
    oidc_port: int

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, user: str) -> str:
        out = subprocess.run(
            [
                str(BIN / "drift-monitor-server"),
                "dev-token",
                user,
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.strip().splitlines()[-1]


def _start(data_dir: Path) -> Stack:
    stack = Stack(
        process=subprocess.Popen(
            [
                str(BIN / "drift-monitor-server"),
                "dev",
                "--port",
                str(free_port()),
                "--data-dir",
                str(data_dir),
                "--mongo-port",
                str(free_port()),
                "--oidc-port",
                str(free_port()),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "DRIFT_MONGODB_URL"},
        ),
        data_dir=data_dir,
        port=0,
        mongo_port=0,
        oidc_port=0,
    )
    argv = stack.process.args
    assert isinstance(argv, list)
    stack.port, stack.mongo_port, stack.oidc_port = (int(argv[3]), int(argv[7]), int(argv[9]))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise AssertionError(
                f"dev stack exited: {stack.process.stdout.read() if stack.process.stdout else ''}"
            )
        try:
            if httpx2.get(f"{stack.api}/health/ready", timeout=1).status_code == 200:
                return stack
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    stack.process.kill()
    raise AssertionError("dev stack did not become ready")


def _stop(stack: Stack) -> str:
    stack.process.send_signal(signal.SIGINT)
    output, _ = stack.process.communicate(timeout=30)
    return output


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = _start(tmp_path_factory.mktemp("stack"))
    yield running
    if running.process.poll() is None:
        _stop(running)


def _names(api: str, token: str | None) -> set[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx2.post(
        f"{api}/api/v1/experiment/search", json={}, headers=headers, params={"page_size": 100}
    )
    assert response.status_code == 200, response.text
    return {experiment["name"] for experiment in response.json()}


def test_dev_token_and_sandbox_demo_data(stack: Stack) -> None:
    alice, bob = stack.token("alice"), stack.token("bob")
    me = httpx2.get(f"{stack.api}/api/v1/user/self", headers={"Authorization": f"Bearer {alice}"})
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.org"
    public = {"credit-scoring", "image-classifier"}
    assert _names(stack.api, None) == public
    assert _names(stack.api, alice) == public | {"churn-prediction"}
    assert _names(stack.api, bob) == public | {"fraud-detection"}
    admin = stack.token("admin")
    assert len(_names(stack.api, admin)) == 4
    runs = httpx2.post(
        f"{stack.api}/api/v1/experiment/search", json={"name": "credit-scoring"}
    ).json()[0]
    drifts = httpx2.post(
        f"{stack.api}/api/v1/experiment/{runs['id']}/drift/search",
        json={},
        params={"page_size": 100, "order_by": "asc"},
    )
    created = [run["created_at"] for run in drifts.json()]
    assert json.loads(drifts.headers["x-pagination"])["total"] > 20
    assert created[-1][:10] != created[0][:10]  # spread over weeks, not one burst


def test_dev_token_rejects_unknown_user(stack: Stack) -> None:
    result = subprocess.run(
        [
            str(BIN / "drift-monitor-server"),
            "dev-token",
            "mallory",
            "--data-dir",
            str(stack.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown sandbox user" in result.stderr


def _quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.S)
    assert match, "README has no quickstart block"
    return match.group(1)


def test_readme_quickstart_works_as_written(stack: Stack) -> None:
    script = _quickstart_block()
    # The only edits: this stack's port and data directory instead of the defaults.
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{stack.port}")
    script = script.replace("dev-token alice", f"dev-token alice --data-dir {stack.data_dir}")
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    env = {**os.environ, "PATH": f"{Path(uv).parent}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alice" in result.stdout
    assert "quickstart" in result.stdout
    assert "model-1" in result.stdout
    assert "Completed" in result.stdout
    # The server-side check ran in the stack's embedded worker and found the injected drift.
    assert "drifted features: ['age']" in result.stdout


def test_ctrl_c_stops_every_process_and_data_persists(tmp_path: Path) -> None:
    first = _start(tmp_path)
    token = first.token("alice")
    created = httpx2.post(
        f"{first.api}/api/v1/experiment",
        json={"name": "survives-restart"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    output = _stop(first)
    assert first.process.returncode is not None
    assert not port_open(first.port)
    assert not port_open(first.mongo_port)
    assert not port_open(first.oidc_port)
    assert not (tmp_path / "stack.json").exists()
    assert "loaded the sandbox demo data" in output

    second = _start(tmp_path)
    try:
        names = _names(second.api, second.token("admin"))
        assert "survives-restart" in names
        assert len(names) == 5  # the demo data was not loaded twice
    finally:
        output = _stop(second)
    assert "loaded the sandbox demo data" not in output
