"""Token sources and refresh, with real JWTs from the test issuer and its MyToken exchange."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from drift_monitor import (
    Client,
    ConfigurationError,
    MyTokenProvider,
    StaticToken,
)
from drift_monitor._auth import resolve_token_provider

from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer


def test_explicit_token_beats_env(
    backend_env: str,
    issuer: JWTIssuer,
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., Client],
) -> None:
    make_client("bob")  # registers bob
    make_client("alice")
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("bob"))
    monkeypatch.setenv("DRIFT_MONITOR_MYTOKEN", "mt-carol")
    with Client(token=issuer.token("alice")) as explicit:
        assert explicit.get_user().subject == "alice"
    with Client() as from_env:
        assert from_env.get_user().subject == "bob", "DRIFT_MONITOR_TOKEN beats the MyToken"


def test_callable_jwt_is_reused_until_shortly_before_exp(
    issuer: JWTIssuer, make_client: Callable[..., Client]
) -> None:
    make_client("alice")
    calls: list[int] = []

    def long_lived() -> str:
        calls.append(1)
        return issuer.token("alice", expires_in=3600)

    client = make_client(None, token=long_lived)
    for _ in range(3):
        client.get_user()
    assert len(calls) == 1

    short: list[int] = []

    def expiring_within_a_minute() -> str:
        short.append(1)
        return issuer.token("alice", expires_in=30)

    client = make_client(None, token=expiring_within_a_minute)
    for _ in range(3):
        client.get_user()
    assert len(short) == 3, "tokens within the refresh margin are fetched again"


def test_rejected_cached_token_is_fetched_once_more(
    issuer: JWTIssuer, make_client: Callable[..., Client]
) -> None:
    make_client("alice")
    tokens = iter(
        [issuer.token("alice", issuer="https://untrusted.example"), issuer.token("alice")]
    )
    client = make_client(None, token=lambda: next(tokens))
    assert client.get_user().subject == "alice"


def test_mytoken_exchange_from_env(
    backend_env: str,
    issuer: JWTIssuer,
    monkeypatch: pytest.MonkeyPatch,
    make_client: Callable[..., Client],
) -> None:
    make_client("carol")
    monkeypatch.setenv("DRIFT_MONITOR_MYTOKEN", "mt-carol")
    monkeypatch.setenv("MYTOKEN_SERVER", issuer.url)
    with Client() as client:
        assert client.get_user().subject == "carol"
        assert client.entitlements() == ["urn:test:group:team-c"]


def test_mytoken_refreshes_a_minute_before_expiry(issuer: JWTIssuer) -> None:
    now = [1_000_000.0]
    provider = MyTokenProvider("mt-alice", issuer.url, clock=lambda: now[0])
    first = provider.get_token()
    assert provider.get_token() == first
    now[0] += 300 - 61  # expires_in is 300: still more than a minute left
    assert provider.get_token() == first
    now[0] += 2  # now within the last minute
    second = provider.get_token()
    assert second != first


def test_bad_mytoken_is_a_configuration_error(
    live_backend: ThreadedServer, issuer: JWTIssuer
) -> None:
    provider = MyTokenProvider("not-a-mytoken", issuer.url)
    with (
        Client(live_backend.url, token=provider) as client,
        pytest.raises(ConfigurationError, match="unknown mytoken"),
    ):
        client.get_user()


def test_token_resolution_order() -> None:
    assert resolve_token_provider(None, {}) is None
    env = {"DRIFT_MONITOR_TOKEN": "t1", "DRIFT_MONITOR_MYTOKEN": "mt-x"}
    chosen = resolve_token_provider(None, env)
    assert isinstance(chosen, StaticToken)
    assert chosen.get_token() == "t1"
    assert isinstance(
        resolve_token_provider(None, {"DRIFT_MONITOR_MYTOKEN": "mt-x"}), MyTokenProvider
    )
    # oidc-agent is only used when liboidcagent is importable (it is not installed here).
    assert resolve_token_provider(None, {"OIDC_AGENT_ACCOUNT": "egi"}) is None
    with pytest.raises(ConfigurationError):
        resolve_token_provider("", {})
