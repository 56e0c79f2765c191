"""Bearer tokens: every way a token can be bad is a 401 with WWW-Authenticate; good JWTs,
rotated keys and opaque tokens (resolved at the real OIDC provider's userinfo) are accepted;
an unreachable issuer is a 503; entitlement claims, email verification and the service's
entitlement gate are configurable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from drift_backend.devstack.services import ManagedProcess, free_port
from joserfc.jwk import RSAKey

from tests.conftest import ADMIN_GROUP, Api
from tests.support.jwt_issuer import JWTIssuer

ENTITLEMENT = "/api/v1/entitlement"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge or 'error="invalid_request"' in challenge
    body = response.json()
    assert body["code"] == "unauthorized"
    assert body["status"] == 401


def _hmac_confused(issuer: JWTIssuer) -> str:
    """HS256 "signed" with the issuer's public key PEM as the HMAC secret (key confusion).

    Built by hand: joserfc itself refuses to use a public key as an HMAC secret."""
    key = issuer.keys[-1]
    now = int(time.time())
    signing_input = (
        _b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
        + "."
        + _b64({"iss": issuer.url, "sub": "alice", "iat": now, "exp": now + 300})
    )
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.fixture
def own_issuer() -> Iterator[JWTIssuer]:
    """An issuer of our own (its keys can rotate without touching the shared one)."""
    with JWTIssuer() as jwt_issuer:
        yield jwt_issuer


def _bad_tokens(issuer: JWTIssuer) -> dict[str, str]:
    good = issuer.token("alice")
    header, payload, signature = good.split(".")
    stranger = RSAKey.generate_key(2048, parameters={"kid": str(issuer.keys[-1].kid)})
    unknown = RSAKey.generate_key(2048, parameters={"kid": "not-in-the-jwks"})
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    return {
        "expired": issuer.token("alice", expires_in=-600),
        "untrusted issuer": issuer.token("alice", issuer="https://evil.example.org"),
        "forged signature (same kid, other key)": issuer.token("alice", key=stranger),
        "tampered signature": f"{header}.{payload}.{flipped}",
        "tampered payload": f"{header}.{_b64({'sub': 'admin', 'iss': issuer.url})}.{signature}",
        "unknown key": issuer.token("alice", key=unknown),
        "alg none": issuer.unsigned_token("alice"),
        "HS256 key confusion": _hmac_confused(issuer),
        "not yet valid": issuer.token("alice", nbf=int(time.time()) + 3600),
        "no subject": issuer.token("alice", sub=None),
        "garbage": "garbage",
        "garbage with dots": "abc.def.ghi",
        "header not JSON": f"{base64.urlsafe_b64encode(b'not json').decode()}.{payload}.{signature}",
        "header a list": f"{_b64([1, 2])}.{payload}.{signature}",
        "kid not a string": f"{_b64({'alg': 'RS256', 'kid': 7})}.{payload}.{signature}",
        "four segments": f"{good}.extra",
        "exp not a number": issuer.token("alice", exp="tomorrow"),
        "sub not a string": issuer.token("alice", sub=123),
        "empty sub": issuer.token("alice", sub=""),
        "iss a list": issuer.token("alice", iss=[issuer.url]),
        "ES256 header on an RSA key": f"{_b64({'alg': 'ES256', 'kid': 'k1'})}.{payload}.{signature}",
        "unknown crit header": (
            f"{_b64({'alg': 'RS256', 'kid': 'k1', 'crit': ['x']})}.{payload}.{signature}"
        ),
        "payload a list": f"{header}.{_b64([1])}.{signature}",
    }


async def test_bad_tokens_are_401(api: Api) -> None:
    await api.register("alice")
    for name, token in _bad_tokens(api.issuer).items():
        for method, url in (("GET", ENTITLEMENT), ("GET", "/api/v1/user/self")):
            response = await api.request(method, url, headers=_bearer(token))
            assert response.status_code == 401, (name, response.text)
            _assert_401(response)
        # Anonymous-readable routes do not fall back to anonymous for a bad token.
        response = await api.request(
            "POST", "/api/v1/experiment/search", headers=_bearer(token), json={}
        )
        assert response.status_code == 401, name


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer ",
        "Token abc",
        "bearer-abc",
        "Bearer " + "a" * 20_000,
    ],
)
async def test_malformed_authorization_header_is_401(api: Api, header: str) -> None:
    response = await api.request("GET", ENTITLEMENT, headers={"Authorization": header})
    _assert_401(response)


async def test_missing_token_is_401_where_authentication_is_needed(api: Api) -> None:
    response = await api.request("GET", ENTITLEMENT)
    _assert_401(response)


async def test_good_jwt_is_accepted(api: Api) -> None:
    response = await api.request("GET", ENTITLEMENT, "alice")
    assert response.status_code == 200
    assert response.json() == {"items": ["urn:test:group:team-a"]}
    # Both spellings drift-monitor clients use.
    response = await api.request("GET", "/api/v1/entitlements", "alice")
    assert response.json() == {"items": ["urn:test:group:team-a"]}


async def test_audience(api_factory: Any) -> None:
    api = await api_factory(audience="drift")
    ok = api.issuer.token("alice", aud="drift")
    ok_in_list = api.issuer.token("alice", aud=["other", "drift"])
    wrong = api.issuer.token("alice", aud="another-service")
    missing = api.issuer.token("alice")
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(ok))).status_code == 200
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(ok_in_list))).status_code == 200
    _assert_401(await api.request("GET", ENTITLEMENT, headers=_bearer(wrong)))
    _assert_401(await api.request("GET", ENTITLEMENT, headers=_bearer(missing)))


async def test_key_rotation(api_factory: Any, own_issuer: JWTIssuer) -> None:
    own_issuer.profile("alice", eduperson_entitlement=["urn:own:team"])
    api = await api_factory(trusted_issuers=[own_issuer.url], jwks_refresh_min_seconds=0)
    old = own_issuer.token("alice")
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(old))).status_code == 200
    # The JWKS is cached now; the issuer publishes a new key and signs with it.
    own_issuer.rotate()
    new = own_issuer.token("alice")
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == "k2"
    response = await api.request("GET", ENTITLEMENT, headers=_bearer(new))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": ["urn:own:team"]}
    # Tokens signed by the old key stay valid while the key is published.
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(old))).status_code == 200
    # A key the issuer withdrew stops working once the JWKS is fetched again.
    own_issuer.keys.pop(0)
    fresh = await api_factory(trusted_issuers=[own_issuer.url], jwks_cache_seconds=0)
    _assert_401(await fresh.request("GET", ENTITLEMENT, headers=_bearer(old)))
    assert (await fresh.request("GET", ENTITLEMENT, headers=_bearer(new))).status_code == 200


async def test_unknown_kid_refresh_is_rate_limited(api_factory: Any, own_issuer: JWTIssuer) -> None:
    """Random kids cannot make the backend hammer the issuer; a real rotation is still seen
    once the minimum refresh interval has passed."""
    api = await api_factory(trusted_issuers=[own_issuer.url], jwks_refresh_min_seconds=3600)
    first = own_issuer.token("alice")
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(first))).status_code == 200
    own_issuer.rotate()
    _assert_401(await api.request("GET", ENTITLEMENT, headers=_bearer(own_issuer.token("alice"))))


async def test_opaque_token_resolved_at_userinfo(
    api: Api, opaque_token: Any, oidc_provider: ManagedProcess
) -> None:
    token = opaque_token("alice")
    assert token.count(".") != 2  # really opaque, not a JWT
    response = await api.request("GET", ENTITLEMENT, headers=_bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": ["urn:test:group:team-a"]}
    response = await api.request("POST", "/api/v1/user", headers=_bearer(token))
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["subject"] == "alice"
    assert user["issuer"] == oidc_provider.url.rstrip("/")
    assert user["email"] == "alice@example.org"
    # The same person with a JWT from another issuer is another user.
    response = await api.request("GET", "/api/v1/user/self", "alice")
    assert response.status_code == 404
    # An opaque token the provider does not know is refused.
    _assert_401(await api.request("GET", ENTITLEMENT, headers=_bearer(token + "x")))


async def test_unreachable_issuer_is_503(api_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    api = await api_factory(trusted_issuers=[dead], issuer_timeout_seconds=2)
    token = api.issuer.token("alice", issuer=dead)
    for bearer in (token, "some-opaque-token"):
        response = await api.request("GET", ENTITLEMENT, headers=_bearer(bearer))
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["code"] == "service_unavailable"
        assert body["status"] == 503
    # Untrusted issuers are still refused outright, without asking anyone.
    _assert_401(await api.request("GET", ENTITLEMENT, "alice"))


@pytest.mark.parametrize(
    ("claim_path", "claims", "expected"),
    [
        ("realm_access/roles", {"realm_access": {"roles": ["r1", "r2"]}}, ["r1", "r2"]),
        ("realm_access.roles", {"realm_access": {"roles": ["r1"]}}, ["r1"]),
        ("groups", {"groups": ["/team-x"]}, ["/team-x"]),
        ("scope_groups", {"scope_groups": "g1 g2"}, ["g1", "g2"]),
        ("realm_access/roles", {"realm_access": "not an object"}, []),
        ("groups", {}, []),
    ],
)
async def test_entitlements_from_configured_claim(
    api_factory: Any, claim_path: str, claims: dict[str, Any], expected: list[str]
) -> None:
    api = await api_factory(entitlements_claim=claim_path)
    token = api.issuer.token("dave", **claims)
    response = await api.request("GET", ENTITLEMENT, headers=_bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": expected}


async def test_admin_from_configured_claim(api_factory: Any) -> None:
    api = await api_factory(entitlements_claim="realm_access/roles", admin_entitlements=["boss"])
    boss = api.issuer.token("dave", realm_access={"roles": ["boss"]})
    staff = api.issuer.token("erin", realm_access={"roles": ["staff"]})
    r = await api.request("POST", "/api/v1/user/search", headers=_bearer(boss), json={})
    assert r.status_code == 200, r.text
    r = await api.request("POST", "/api/v1/user/search", headers=_bearer(staff), json={})
    assert r.status_code == 403


async def test_require_email_verified(api_factory: Any) -> None:
    api = await api_factory(require_email_verified=True)
    assert (await api.request("GET", ENTITLEMENT, "alice")).status_code == 200
    response = await api.request("GET", ENTITLEMENT, "carol")  # email_verified: false
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    string_true = api.issuer.token("alice", email_verified="true")
    assert (await api.request("GET", ENTITLEMENT, headers=_bearer(string_true))).status_code == 403
    # Without the setting, carol is fine.
    relaxed = await api_factory()
    assert (await relaxed.request("GET", ENTITLEMENT, "carol")).status_code == 200


async def test_user_entitlements_gate(api_factory: Any) -> None:
    api = await api_factory(user_entitlements=["urn:test:group:team-a"])
    assert (await api.request("GET", ENTITLEMENT, "alice")).status_code == 200
    assert (await api.request("GET", ENTITLEMENT, "admin")).status_code == 200  # admins pass
    for who in ("bob", "carol"):
        response = await api.request("GET", ENTITLEMENT, who)
        assert response.status_code == 403, who
        assert response.json()["code"] == "forbidden"
        response = await api.request("POST", "/api/v1/user", who)
        assert response.status_code == 403, who
    # Anonymous callers are not affected by the gate (they only read public data).
    assert (await api.request("POST", "/api/v1/experiment/search", json={})).status_code == 200


async def test_admin_entitlements(api: Api) -> None:
    await api.register("alice")
    await api.register("bob")
    exp = await api.experiment("bob")
    r = await api.request("POST", "/api/v1/user/search", "admin", json={})
    assert r.status_code == 200
    assert {user["subject"] for user in r.json()} == {"alice", "bob"}
    assert (await api.request("POST", "/api/v1/user/search", "alice", json={})).status_code == 403
    # Admins manage any experiment, registered or not.
    r = await api.request(
        "PATCH", f"/api/v1/experiment/{exp['id']}", "admin", json={"description": "audited"}
    )
    assert r.status_code == 200
    assert r.json()["description"] == "audited"
    assert ADMIN_GROUP in (await api.request("GET", ENTITLEMENT, "admin")).json()["items"]
