"""Client tests run against the live backend (uvicorn on loopback) with real tokens.

The one fake allowed here is ``FlakyTransport``: it injects network failures or 5xx answers
in front of the real ``httpx2.HTTPTransport`` to exercise the retry logic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from drift_monitor import Client, Experiment, register

from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

ENV_VARS = [
    "DRIFT_MONITOR_URL",
    "DRIFT_MONITOR_TIMEOUT",
    "DRIFT_MONITOR_CA_BUNDLE",
    "DRIFT_MONITOR_INSECURE",
    "DRIFT_MONITOR_RETRIES",
    "DRIFT_MONITOR_TOKEN",
    "DRIFT_MONITOR_MYTOKEN",
    "MYTOKEN_SERVER",
    "OIDC_AGENT_ACCOUNT",
    "DRIFT_MONITOR_SPOOL_MAX_BYTES",
]

Failure = int | type[httpx2.TransportError]


class FlakyTransport(httpx2.BaseTransport):
    """Fail the first calls (raise a transport error or answer a status), then delegate."""

    def __init__(self, failures: list[Failure] | None = None) -> None:
        self.failures = list(failures or [])
        self.down = False  # when set, every call fails with ConnectError
        self.calls: list[str] = []
        #: The ``Idempotency-Key`` header of each call (``None`` when absent).
        self.keys: list[str | None] = []
        self.inner = httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        self.keys.append(request.headers.get("idempotency-key"))
        if self.down:
            raise httpx2.ConnectError("connection refused (injected)", request=request)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, int):
                body = {"code": "unavailable", "status": failure, "message": "injected"}
                return httpx2.Response(failure, json=body, request=request)
            raise failure(f"injected {failure.__name__}", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's DRIFT_MONITOR_* settings, or writes to their spool."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIFT_MONITOR_SPOOL_DIR", str(tmp_path / "default-spool"))


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch, live_backend: ThreadedServer) -> str:
    monkeypatch.setenv("DRIFT_MONITOR_URL", live_backend.url)
    return live_backend.url


@pytest.fixture
def make_client(live_backend: ThreadedServer, issuer: JWTIssuer) -> Iterator[Callable[..., Client]]:
    """Build clients for a persona (registered on first use); all closed after the test."""
    made: list[Client] = []

    def build(who: str | None = "alice", **kwargs: Any) -> Client:
        if who is not None:
            kwargs.setdefault("token", lambda: issuer.token(who))
        kwargs.setdefault("sleep", lambda _: None)
        client = Client(live_backend.url, **kwargs)
        made.append(client)
        if who is not None:
            register(accept_terms=True, client=client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def alice(make_client: Callable[..., Client]) -> Client:
    return make_client("alice")


@pytest.fixture
def experiment(alice: Client) -> Experiment:
    return alice.create_experiment(unique(), "client test experiment")
