"""Bearer-token verification: JWTs locally against the issuer's JWKS, opaque ones at userinfo."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from cachetools import TLRUCache
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from drift_backend.auth.identity import Identity, entitlements_from
from drift_backend.auth.issuers import IssuerClient
from drift_backend.errors import Forbidden, Unauthorized
from drift_backend.settings import Settings


def _segment(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _unverified_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and payload of something shaped like a JWS compact JWT, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = _segment(parts[0]), _segment(parts[1])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload


def _until(_key: str, value: tuple[float, str, dict[str, Any]], _now: float) -> float:
    return value[0]


class TokenVerifier:
    #: Verified JWTs are reused for at most this long (and never past their ``exp``).
    VERIFIED_TTL = 60.0
    #: Verified JWTs kept; beyond it the least recently used go first.
    CACHED_TOKENS = 10_000

    def __init__(self, settings: Settings, issuers: IssuerClient) -> None:
        self.settings = settings
        self.issuers = issuers
        # Wall-clock timer: each entry expires at its own time, bounded by the token's exp.
        self._verified: TLRUCache[str, tuple[float, str, dict[str, Any]]] = TLRUCache(
            self.CACHED_TOKENS, _until, timer=time.time
        )

    async def verify(self, token: str) -> Identity:
        parsed = _unverified_jwt(token)
        if parsed is None:
            issuer, claims = await self.issuers.userinfo(token)
        else:
            issuer, claims = await self._verify_jwt_cached(token, *parsed)
        return self._identity(issuer, claims)

    async def _verify_jwt_cached(
        self, token: str, header: dict[str, Any], payload: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        # A client reuses its token for many requests; the signature check is the same each time.
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._verified.get(key)
        if hit is not None:
            return hit[1], hit[2]
        issuer, claims = await self._verify_jwt(token, header, payload)
        now = time.time()
        expires = min(now + self.VERIFIED_TTL, float(claims.get("exp", now)))
        if expires > now:
            self._verified[key] = (expires, issuer, claims)
        return issuer, claims

    async def _verify_jwt(
        self, token: str, header: dict[str, Any], payload: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted")
        issuer = str(payload.get("iss", "")).rstrip("/")
        if issuer not in self.settings.trusted_issuers:
            raise Unauthorized("token issuer is not trusted")
        keys = await self.issuers.keys(issuer)
        kid = header.get("kid")
        if not _has_kid(keys, kid):
            keys = await self.issuers.keys(issuer, refresh=True)
            if not _has_kid(keys, kid):
                raise Unauthorized("token signed with an unknown key")
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except BadSignatureError:
            raise Unauthorized("token signature is invalid") from None
        except (JoseError, ValueError) as error:
            raise Unauthorized(f"token is malformed: {type(error).__name__}") from None
        options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "value": str(payload.get("iss"))},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        if self.settings.audience:
            options["aud"] = {"essential": True, "value": self.settings.audience}
        registry = JWTClaimsRegistry(leeway=30, **options)  # type: ignore[arg-type]
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise Unauthorized("token has expired") from None
        except InvalidClaimError as error:
            raise Unauthorized(f"token claim {error.claim!r} is invalid") from None
        except JoseError as error:
            raise Unauthorized(
                f"token claims are invalid: {error.description or error.error}"
            ) from None
        return issuer, dict(decoded.claims)

    def _identity(self, issuer: str, claims: dict[str, Any]) -> Identity:
        settings = self.settings
        entitlements = entitlements_from(claims, settings.entitlements_claim)
        email_verified = claims.get("email_verified") is True
        if settings.require_email_verified and not email_verified:
            raise Forbidden("the token's email address is not verified")
        if settings.user_entitlements and not (
            set(entitlements) & set(settings.user_entitlements + settings.admin_entitlements)
        ):
            raise Forbidden("the token carries no entitlement that grants use of this service")
        email = claims.get("email")
        return Identity(
            subject=str(claims["sub"]),
            issuer=issuer,
            email=email if isinstance(email, str) else None,
            email_verified=email_verified,
            entitlements=entitlements,
            is_admin=bool(set(entitlements) & set(settings.admin_entitlements)),
            claims=claims,
        )


def _has_kid(keys: KeySet, kid: Any) -> bool:
    if kid is not None and not isinstance(kid, str):
        return False
    try:
        keys.get_by_kid(kid)
    except JoseError:
        return False
    return True
