"""`make run-tls` (deploy/tls/run_tls.py): the local stack behind the repository's Traefik
configuration over HTTPS with a locally generated certificate, run as a user would, checked
like a compose stack, and stopped with SIGTERM taking Traefik down with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from drift_backend.devstack.services import free_port, port_open

from tests.deploy.test_running_stack import (
    RunningStack,
    check_api_and_dashboard_over_https,
    check_sandbox_user_records_a_run,
)

ROOT = Path(__file__).resolve().parents[2]


def test_run_tls_serves_the_local_stack_over_https(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("port", "https", "http", "ping", "oidc", "mongo")}
    argv = [
        sys.executable,
        str(ROOT / "deploy" / "tls" / "run_tls.py"),
        "--port", str(ports["port"]),
        "--https-port", str(ports["https"]),
        "--http-port", str(ports["http"]),
        "--ping-port", str(ports["ping"]),
        "--oidc-port", str(ports["oidc"]),
        "--mongo-port", str(ports["mongo"]),
        "--data-dir", str(tmp_path),
    ]  # fmt: skip
    log = (tmp_path / "run-tls.log").open("wb")
    process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    stack = RunningStack(
        f"https://localhost:{ports['https']}",
        f"http://127.0.0.1:{ports['http']}",
        str(tmp_path / "tls" / "ca.pem"),
        f"http://127.0.0.1:{ports['oidc']}",
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "run-tls.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run-tls.log").read_text()
            if (tmp_path / "tls" / "ca.pem").exists() and port_open(ports["https"]):
                try:
                    with stack.client() as http:
                        if http.get("/health/ready").status_code == 200:
                            break
                except httpx2.HTTPError:
                    pass
            time.sleep(0.3)
        check_api_and_dashboard_over_https(stack)
        check_sandbox_user_records_a_run(stack)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    assert not port_open(ports["https"])  # Traefik went with it
    assert not port_open(ports["port"])
