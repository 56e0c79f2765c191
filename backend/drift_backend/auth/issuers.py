"""Trusted OIDC issuers: discovery metadata, JWKS with rotation, userinfo with a short cache."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from cachetools import TTLCache
from joserfc.jwk import KeySet

from drift_backend.errors import ServiceUnavailable, Unauthorized

#: Opaque tokens whose userinfo answer is kept; beyond it the least recently used go first.
CACHED_USERINFO = 10_000


@dataclass
class IssuerClient:
    """Talks to the trusted issuers over HTTP; one instance per application."""

    issuers: list[str]
    http: httpx2.AsyncClient
    jwks_ttl: float = 300.0
    userinfo_ttl: float = 60.0
    jwks_refresh_min: float = 10.0
    # Keyed by trusted issuer only, so bounded by the configured list.
    _metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    _jwks_refreshed: dict[str, float] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._jwks: TTLCache[str, KeySet] = TTLCache(
            max(1, len(self.issuers)), self.jwks_ttl, timer=time.monotonic
        )
        self._userinfo: TTLCache[str, tuple[str, dict[str, Any]]] = TTLCache(
            CACHED_USERINFO, self.userinfo_ttl, timer=time.monotonic
        )

    async def _get_json(self, url: str, *, headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self.http.get(url, headers=headers)
        except httpx2.HTTPError as error:
            raise ServiceUnavailable(
                f"identity provider unreachable: {type(error).__name__}"
            ) from error
        if response.status_code >= 500:
            raise ServiceUnavailable(f"identity provider answered {response.status_code}")
        return response

    async def metadata(self, issuer: str) -> dict[str, Any]:
        if issuer not in self._metadata:
            response = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            if response.status_code != 200:
                raise ServiceUnavailable(f"issuer discovery failed with {response.status_code}")
            document = response.json()
            if document.get("issuer", "").rstrip("/") != issuer:
                raise ServiceUnavailable("issuer discovery document names another issuer")
            self._metadata[issuer] = document
        return self._metadata[issuer]

    async def keys(self, issuer: str, *, refresh: bool = False) -> KeySet:
        """The issuer's JWKS; ``refresh`` re-fetches for an unknown kid, at most once per
        ``jwks_refresh_min`` seconds."""
        now = time.monotonic()
        cached = self._jwks.get(issuer)
        recently = now - self._jwks_refreshed.get(issuer, -1e18) < self.jwks_refresh_min
        if cached is not None and not (refresh and not recently):
            return cached
        async with self._lock:
            metadata = await self.metadata(issuer)
            response = await self._get_json(metadata["jwks_uri"])
            if response.status_code != 200:
                raise ServiceUnavailable(f"JWKS fetch failed with {response.status_code}")
            keyset = KeySet.import_key_set(response.json())
            if self.jwks_ttl > 0:
                self._jwks[issuer] = keyset
            self._jwks_refreshed[issuer] = now
            return keyset

    async def userinfo(self, token: str) -> tuple[str, dict[str, Any]]:
        """Resolve an opaque token at the trusted issuers' userinfo endpoints."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._userinfo.get(digest)
        if cached is not None:
            return cached
        for issuer in self.issuers:
            metadata = await self.metadata(issuer)
            endpoint = metadata.get("userinfo_endpoint")
            if not endpoint:
                continue
            response = await self._get_json(endpoint, headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 200:
                claims = response.json()
                if isinstance(claims, dict) and isinstance(claims.get("sub"), str):
                    result = (issuer, claims)
                    if self.userinfo_ttl > 0:
                        self._userinfo[digest] = result
                    return result
        raise Unauthorized("token is not valid at any trusted issuer")
