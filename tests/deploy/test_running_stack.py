"""The running compose stack, from inside compose.test.yml's `tests` container (skipped
elsewhere): HTTPS through its Traefik with the stack's local CA, the API and the dashboard,
the redirect, /metrics not routed, and a sandbox user's real login at the stack's OIDC
provider creating an experiment and a run."""

from __future__ import annotations

import os
import ssl
import uuid

import httpx2
import pytest
from drift_backend.devstack.services import fetch_token

STACK = os.environ.get("DRIFT_STACK_URL")
pytestmark = pytest.mark.skipif(not STACK, reason="DRIFT_STACK_URL not set (compose.test.yml)")


def client() -> httpx2.Client:
    context = ssl.create_default_context(cafile=os.environ["DRIFT_STACK_CA"])
    return httpx2.Client(base_url=str(STACK), verify=context, timeout=30)


def test_stack_serves_api_and_dashboard_over_https() -> None:
    with client() as http:
        assert http.get("/health/ready").status_code == 200
        assert http.post("/api/v1/experiment/search", json={}).status_code == 200
        home = http.get("/", follow_redirects=False)
        assert home.status_code == 302
        assert http.get("/static/app.css").status_code == 200
        assert http.get("/metrics").status_code == 404
        assert "strict-transport-security" in home.headers
    plain = httpx2.get(f"{os.environ['DRIFT_STACK_HTTP_URL']}/experiments", follow_redirects=False)
    assert plain.headers["location"].startswith("https://")


def test_sandbox_user_logs_in_and_records_a_run() -> None:
    token = fetch_token(
        os.environ["DRIFT_STACK_ISSUER"], "alice", client_secret="dev-only-client-secret"
    )["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with client() as http:
        http.post("/api/v1/user", headers=headers)  # 201, or 409 when already registered
        made = http.post(
            "/api/v1/experiment", headers=headers, json={"name": f"stack-{uuid.uuid4().hex[:8]}"}
        )
        assert made.status_code == 201, made.text
        run = http.post(
            f"/api/v1/experiment/{made.json()['id']}/drift", headers=headers, json={"model": "m"}
        )
        assert run.status_code == 201, run.text
