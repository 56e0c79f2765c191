"""A test OIDC issuer that signs JWT access tokens and serves discovery and JWKS over HTTP.

It also answers MyToken's access-token exchange (MyToken is an external service our users
reach; drift-monitor 1.1.1 only gets tokens that way), trading ``mytoken`` strings of the
form ``mt-<subject>`` for JWTs of that subject.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threads import ThreadedServer

Key = RSAKey | ECKey


class JWTIssuer:
    def __init__(self) -> None:
        self.keys: list[Key] = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.profiles: dict[str, dict[str, Any]] = {}
        self.server = ThreadedServer(self._app())

    # HTTP side -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> JWTIssuer:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def _app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.url,
                    "jwks_uri": f"{self.url}/jwks",
                    "userinfo_endpoint": f"{self.url}/userinfo",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            )

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse(KeySet(list(self.keys)).as_dict(private=False))

        async def userinfo(request: Request) -> JSONResponse:
            # JWT access tokens are verified locally; userinfo knows no opaque tokens here.
            return JSONResponse({"error": "invalid_token"}, status_code=401)

        async def mytoken_config(_: Request) -> JSONResponse:
            return JSONResponse(
                {"issuer": self.url, "access_token_endpoint": f"{self.url}/api/v0/token/access"}
            )

        async def mytoken_access(request: Request) -> JSONResponse:
            body = await request.json()
            mytoken = str(body.get("mytoken", ""))
            if body.get("grant_type") != "mytoken" or not mytoken.startswith("mt-"):
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "unknown mytoken"},
                    status_code=400,
                )
            subject = mytoken.removeprefix("mt-")
            return JSONResponse(
                {"access_token": self.token(subject), "token_type": "Bearer", "expires_in": 300}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/userinfo", userinfo, methods=["GET", "POST"]),
                Route("/.well-known/mytoken-configuration", mytoken_config),
                Route("/api/v0/token/access", mytoken_access, methods=["POST"]),
            ]
        )

    # Token side ----------------------------------------------------------------------------
    def profile(self, subject: str, **claims: Any) -> None:
        """Claims every token of ``subject`` carries (email, entitlements, ...)."""
        self.profiles[subject] = claims

    def rotate(self) -> Key:
        """Publish a new current key; the old ones stay in the JWKS."""
        key = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self.keys) + 1}"})
        self.keys.append(key)
        return key

    def token(
        self,
        subject: str,
        *,
        key: Key | None = None,
        alg: str = "RS256",
        expires_in: int = 300,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.keys[-1]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": subject,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            **self.profiles.get(subject, {}),
            **claims,
        }
        header = {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, payload, key)

    def unsigned_token(self, subject: str) -> str:
        """``alg: none``: header and payload with an empty signature."""
        now = int(time.time())
        payload = {"iss": self.url, "sub": subject, "iat": now, "exp": now + 300}
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{_b64(json.dumps(payload).encode())}."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
