"""A running stack through its Traefik: from inside compose.test.yml's `tests` container
(DRIFT_STACK_* variables; skipped elsewhere), and against `make run-tls` (test_run_tls.py).
HTTPS with the stack's CA, the API and the dashboard, the redirect, /metrics not routed, and
a sandbox user's real login at the stack's OIDC provider creating an experiment and a run."""

from __future__ import annotations

import os
import ssl
import uuid
from dataclasses import dataclass

import httpx2
import pytest
from drift_backend.devstack.services import fetch_token


@dataclass
class RunningStack:
    url: str  # https://...
    http_url: str  # http://... (redirects)
    ca: str  # the CA file the stack's certificate chains to
    issuer: str  # its development OIDC provider

    def client(self) -> httpx2.Client:
        context = ssl.create_default_context(cafile=self.ca)
        return httpx2.Client(base_url=self.url, verify=context, timeout=30)


def check_api_and_dashboard_over_https(stack: RunningStack) -> None:
    with stack.client() as http:
        assert http.get("/health/ready").status_code == 200
        assert http.post("/api/v1/experiment/search", json={}).status_code == 200
        home = http.get("/", follow_redirects=False)
        assert home.status_code == 302
        assert http.get("/static/app.css").status_code == 200
        assert http.get("/metrics").status_code == 404
        assert "strict-transport-security" in home.headers
    plain = httpx2.get(f"{stack.http_url}/experiments", follow_redirects=False)
    assert plain.headers["location"].startswith("https://")


def check_sandbox_user_records_a_run(stack: RunningStack) -> None:
    token = fetch_token(stack.issuer, "alice", client_secret="dev-only-client-secret")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with stack.client() as http:
        http.post("/api/v1/user", headers=headers)  # 201, or 409 when already registered
        made = http.post(
            "/api/v1/experiment", headers=headers, json={"name": f"stack-{uuid.uuid4().hex[:8]}"}
        )
        assert made.status_code == 201, made.text
        run = http.post(
            f"/api/v1/experiment/{made.json()['id']}/drift", headers=headers, json={"model": "m"}
        )
        assert run.status_code == 201, run.text


@pytest.fixture
def compose_stack() -> RunningStack:
    if not os.environ.get("DRIFT_STACK_URL"):
        pytest.skip("DRIFT_STACK_URL not set (compose.test.yml sets it)")
    return RunningStack(
        os.environ["DRIFT_STACK_URL"],
        os.environ["DRIFT_STACK_HTTP_URL"],
        os.environ["DRIFT_STACK_CA"],
        os.environ["DRIFT_STACK_ISSUER"],
    )


def test_stack_serves_api_and_dashboard_over_https(compose_stack: RunningStack) -> None:
    check_api_and_dashboard_over_https(compose_stack)


def test_sandbox_user_logs_in_and_records_a_run(compose_stack: RunningStack) -> None:
    check_sandbox_user_records_a_run(compose_stack)
