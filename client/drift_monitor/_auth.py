"""Token providers: where the bearer token comes from, and when to fetch a new one."""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from drift_monitor._config import DEFAULT_MYTOKEN_SERVER
from drift_monitor._exceptions import ConfigurationError, TransportError

__all__ = [
    "CachedToken",
    "CallableToken",
    "MyTokenProvider",
    "OidcAgentProvider",
    "StaticToken",
    "TokenProvider",
    "TokenSource",
    "jwt_expiry",
    "resolve_token_provider",
]

#: Fetch a new token this many seconds before the old one expires.
REFRESH_MARGIN = 60.0


class TokenProvider:
    """Base class: ``get_token()`` returns a bearer token that is valid right now."""

    #: A human-readable name of the source, for error messages.
    source = "token"

    def get_token(self) -> str:
        raise NotImplementedError

    def invalidate(self) -> bool:
        """Forget a cached token after a 401; True if a retry may get a different one."""
        return False


#: What ``Client(token=...)`` accepts: a token, a zero-argument callable, or a provider.
TokenSource = str | Callable[[], str] | TokenProvider


class StaticToken(TokenProvider):
    def __init__(self, token: str, source: str = "token=") -> None:
        self._token = token
        self.source = source

    def get_token(self) -> str:
        return self._token


class CachedToken(TokenProvider):
    """Caches a fetched token until ``REFRESH_MARGIN`` seconds before it expires.

    The expiry comes from the fetcher (e.g. ``expires_in``) or else from the JWT's ``exp``;
    a token whose expiry is unknown is fetched again for every request.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float | None]],
        *,
        source: str = "token",
        clock: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._token: str | None = None
        self._expires_at: float | None = None
        # One client may be shared by threads; fetch the token once, not once per thread.
        self._lock = threading.Lock()
        self.source = source

    def get_token(self) -> str:
        with self._lock:
            if self._token is None or self._expired():
                token, expires_at = self._fetch()
                self._token = token
                self._expires_at = expires_at if expires_at is not None else jwt_expiry(token)
            return self._token

    def _expired(self) -> bool:
        if self._expires_at is None:
            return True
        return self._clock() >= self._expires_at - self._margin

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
            self._expires_at = None
        return True


class CallableToken(CachedToken):
    """A user's zero-argument callable; its JWTs are reused until shortly before ``exp``."""

    def __init__(self, func: Callable[[], str], *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(lambda: (str(func()), None), source="token= callable", clock=clock)


class MyTokenProvider(CachedToken):
    """Exchange a MyToken for access tokens at a MyToken server."""

    def __init__(
        self,
        mytoken: str,
        server: str = DEFAULT_MYTOKEN_SERVER,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(self._exchange, source="DRIFT_MONITOR_MYTOKEN", clock=clock)
        self._mytoken = mytoken
        self._server = server.rstrip("/")
        self._timeout = timeout
        self._endpoint: str | None = None

    def _exchange(self) -> tuple[str, float | None]:
        try:
            with httpx2.Client(timeout=self._timeout) as http:
                if self._endpoint is None:
                    config = self._json(
                        http.get(f"{self._server}/.well-known/mytoken-configuration")
                    )
                    self._endpoint = str(config["access_token_endpoint"])
                started = self._clock()
                body = self._json(
                    http.post(
                        self._endpoint, json={"grant_type": "mytoken", "mytoken": self._mytoken}
                    )
                )
        except httpx2.TransportError as exc:
            raise TransportError(f"cannot reach MyToken server {self._server}: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"unexpected answer from MyToken server: {exc}") from exc
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ConfigurationError("MyToken server answered without an access_token")
        expires_in = body.get("expires_in")
        return token, started + float(expires_in) if isinstance(expires_in, int | float) else None

    def _json(self, response: httpx2.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error or not isinstance(body, dict):
            detail = ""
            if isinstance(body, dict):
                detail = str(body.get("error_description") or body.get("error") or "")
            raise ConfigurationError(
                f"MyToken exchange at {self._server} failed ({response.status_code}"
                f"{': ' + detail if detail else ''}); check DRIFT_MONITOR_MYTOKEN and MYTOKEN_SERVER"
            )
        return body


class OidcAgentProvider(TokenProvider):
    """Tokens from a running oidc-agent; the agent itself caches and refreshes them."""

    source = "OIDC_AGENT_ACCOUNT"

    def __init__(self, account: str, module: Any) -> None:
        self._account = account
        self._module = module

    def get_token(self) -> str:
        try:
            return str(self._module.get_access_token(self._account, min_valid_period=60))
        except Exception as exc:  # liboidcagent raises its own OidcAgentError types
            raise ConfigurationError(
                f"oidc-agent could not give a token for account {self._account!r}: {exc}"
            ) from exc

    def invalidate(self) -> bool:
        return True


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (the server verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def resolve_token_provider(
    token: TokenSource | None = None,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
) -> TokenProvider | None:
    """First source found wins: ``token``, DRIFT_MONITOR_TOKEN, DRIFT_MONITOR_MYTOKEN,
    oidc-agent (OIDC_AGENT_ACCOUNT); None means anonymous requests."""
    env = os.environ if env is None else env
    if isinstance(token, TokenProvider):
        return token
    if isinstance(token, str):
        if not token:
            raise ConfigurationError("token= is empty")
        return StaticToken(token)
    if callable(token):
        return CallableToken(token)
    if token is not None:
        raise ConfigurationError(f"token= must be a str or a callable, not {type(token).__name__}")
    if env.get("DRIFT_MONITOR_TOKEN"):
        return StaticToken(env["DRIFT_MONITOR_TOKEN"], source="DRIFT_MONITOR_TOKEN")
    if env.get("DRIFT_MONITOR_MYTOKEN"):
        server = env.get("MYTOKEN_SERVER") or DEFAULT_MYTOKEN_SERVER
        return MyTokenProvider(env["DRIFT_MONITOR_MYTOKEN"], server, timeout=timeout)
    account = env.get("OIDC_AGENT_ACCOUNT")
    if account:
        try:
            module = importlib.import_module("liboidcagent")
        except ImportError:
            return None
        return OidcAgentProvider(account, module)
    return None
