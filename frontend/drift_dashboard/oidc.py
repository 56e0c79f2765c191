"""OpenID Connect login through authlib's Starlette client: authorization code with PKCE
(S256), and refreshing a session's access token shortly before it expires.

authlib keeps its login state (state, nonce, PKCE verifier) in ``request.session``, which is
our server-side session's ``data`` (see sessions.py), never a cookie.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any, cast

from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from drift_dashboard.sessions import Session, SessionStore
from drift_dashboard.settings import DashboardSettings

PROVIDER = "drift"
#: What the session keeps of a token response.
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "expires_at", "token_type")


def make_oauth(settings: DashboardSettings) -> StarletteOAuth2App:
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    return cast(StarletteOAuth2App, oauth.create_client(PROVIDER))


def stored_tokens(token: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The token fields a session keeps; a refresh answer may omit the refresh and id token."""
    kept = {name: token[name] for name in TOKEN_FIELDS if token.get(name) is not None}
    if "expires_at" not in kept and token.get("expires_in") is not None:
        kept["expires_at"] = int(time.time()) + int(token["expires_in"])
    for name in ("refresh_token", "id_token"):
        if name not in kept and previous and previous.get(name):
            kept[name] = previous[name]
    return kept


class TokenKeeper:
    """Hands out a session's access token, refreshing it first when it expires soon.

    One refresh per session at a time (an ``asyncio.Lock`` per session): concurrent requests
    of one browser would otherwise each spend the same single-use refresh token."""

    def __init__(self, oauth: StarletteOAuth2App, store: SessionStore, leeway: float) -> None:
        self.oauth = oauth
        self.store = store
        self.leeway = leeway
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _fresh(self, tokens: dict[str, Any] | None) -> bool:
        if not tokens or not tokens.get("access_token"):
            return False
        expires_at = tokens.get("expires_at")
        return expires_at is None or float(expires_at) - time.time() > self.leeway

    async def access_token(self, session: Session) -> str | None:
        """The session's usable access token, or None (anonymous, or it could not be
        renewed: the caller is then treated as logged out)."""
        tokens = session.tokens
        if tokens is None or session.key is None:
            return None
        if self._fresh(tokens):
            return str(tokens["access_token"])
        lock = self._locks.get(session.key)
        if lock is None:
            lock = self._locks[session.key] = asyncio.Lock()
        async with lock:
            # Another request of this session may have refreshed while we waited.
            latest = await self.store.load_tokens(session)
            if self._fresh(latest):
                assert latest is not None
                session.tokens = latest
                session.mark_clean()
                return str(latest["access_token"])
            refresh_token = (latest or tokens).get("refresh_token")
            if refresh_token:
                try:
                    answer = await self.oauth.fetch_access_token(
                        grant_type="refresh_token", refresh_token=refresh_token
                    )
                except Exception:  # the provider refused or is down: the session is over
                    answer = None
                if answer and answer.get("access_token"):
                    renewed = stored_tokens(dict(answer), latest or tokens)
                    await self.store.save_tokens(session, renewed)
                    return str(renewed["access_token"])
            # Not renewable: use it while it still works at all, else log the user out.
            expires_at = tokens.get("expires_at")
            if expires_at is not None and float(expires_at) > time.time():
                return str(tokens["access_token"])
            session.end()
            return None
