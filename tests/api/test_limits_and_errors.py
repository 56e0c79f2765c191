"""Limits, the one error shape, no 500s for bad input, health, production-mode refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess, free_port
from drift_backend.main import create_app
from drift_backend.settings import ConfigurationError, Mode, Settings

from tests.conftest import Api, make_settings


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = dict(response.json())
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    if status == 422:
        assert body["errors"]
        for error in body["errors"]:
            assert set(error) == {"field", "reason"}
    return body


@pytest.fixture(scope="module")
async def exp(shared_api: Api) -> dict[str, Any]:
    await shared_api.request("POST", "/api/v1/user", "alice")
    return await shared_api.experiment("alice")


# --- body size ---------------------------------------------------------------------------------


async def test_body_over_limit_is_413(api_factory: Any) -> None:
    api = await api_factory(max_body_bytes=2_000)
    await api.register("alice")
    exp = await api.experiment("alice")
    url = f"/api/v1/experiment/{exp['id']}/drift"
    big = {"model": "m", "parameters": {"blob": "x" * 5_000}}
    r = await api.request("POST", url, "alice", json=big)
    _assert_error(r, 413, "payload_too_large")
    # Without a Content-Length (chunked upload), the limit holds as well.
    payload = json.dumps(big).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    r = await api.request(
        "POST", url, "alice", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_error(r, 413, "payload_too_large")
    # A body under the limit is fine.
    r = await api.request("POST", url, "alice", json={"model": "m"})
    assert r.status_code == 201
    r = await api.request("POST", f"{url}/search", "alice", json={})
    assert len(r.json()) == 1  # nothing of the refused bodies was stored


# --- 422 shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"model": "m",}', b"", b"\xff\xfe", b'{"model": "m"} trailing'],
)
async def test_malformed_json_is_422(shared_api: Api, exp: dict[str, Any], raw: bytes) -> None:
    r = await shared_api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    _assert_error(r, 422, "validation_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": 5}, "model"),
        ({"model": "m", "tags": [1]}, "tags.0"),
        ({"model": "m", "drift_detected": [True]}, "drift_detected"),
        ({"model": "m", "concept_drift": {"drift": "maybe"}}, "concept_drift.drift"),
        ({"model": "m", "error": {"message": "no type"}}, "error.type"),
        (["model", "m"], "body"),
        ("model", "body"),
    ],
)
async def test_wrong_types_name_the_field(
    shared_api: Api, exp: dict[str, Any], body: Any, field: str
) -> None:
    r = await shared_api.request(
        "POST", f"/api/v1/experiment/{exp['id']}/drift", "alice", json=body
    )
    error = _assert_error(r, 422, "validation_error")
    assert error["errors"][0]["field"] == field
    assert field in error["message"]


async def test_unknown_route_and_method(shared_api: Api) -> None:
    _assert_error(await shared_api.request("GET", "/api/v1/nothing-here"), 404, "not_found")
    _assert_error(await shared_api.request("GET", "/nothing"), 404, "not_found")
    _assert_error(
        await shared_api.request("PATCH", "/api/v1/user/self", "alice"), 405, "method_not_allowed"
    )


# --- never a 500 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("POST", "/api/v1/experiment/search", {}, {"page": 10**6}),
        ("POST", "/api/v1/experiment/search", {}, {"page": 10**30}),
        ("POST", "/api/v1/experiment/search", {}, {"page_size": 10**30}),
        ("POST", "/api/v1/experiment/search", {}, {"page": "1e3"}),
        ("POST", "/api/v1/experiment/search", {"name": "\x00"}, {}),
        ("POST", "/api/v1/experiment/search", {"created_at": {"$gt": "9999-99-99"}}, {}),
        ("POST", "/api/v1/experiment/search", {"created_at": "0001-01-01T00:00:00-23:59"}, {}),
        ("POST", "/api/v1/experiment/search", {"id": {"$in": ["a"] * 10_000}}, {}),
        ("GET", "/api/v1/experiment/not-a-uuid", None, {}),
        ("GET", "/api/v1/experiment/%00", None, {}),
        ("GET", "/api/v1/experiment/" + "x" * 5000, None, {}),
        ("GET", "/api/v1/experiment/{exp}/drift/not-a-uuid", None, {}),
        ("DELETE", "/api/v1/experiment/{exp}/drift/not-a-uuid", None, {}),
        ("POST", "/api/v1/experiment/{exp}/drift", {"model": "m", "parameters": {"$gt": 1}}, {}),
        ("POST", "/api/v1/experiment/{exp}/drift", {"model": "m", "parameters": {"a\x00": 1}}, {}),
        ("POST", "/api/v1/experiment/{exp}/drift", {"model": "m", "parameters": {"n": 10**30}}, {}),
        (
            "POST",
            "/api/v1/experiment/{exp}/drift",
            {"model": "m", "parameters": {"deep": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}},
            {},
        ),
        ("POST", "/api/v1/experiment/{exp}/drift/search", {"parameters.n": 10**30}, {}),
        ("POST", "/api/v1/experiment/{exp}/drift/search", {"parameters.n": {"$in": [10**30]}}, {}),
        ("POST", "/api/v1/experiment/{exp}/drift/search", {"parameters.n": -(2**63) - 1}, {}),
        ("PUT", "/api/v1/experiment/{exp}/permissions", {"entity": "x" * 513, "level": "Read"}, {}),
        ("DELETE", "/api/v1/experiment/{exp}/permissions", None, {}),
        ("POST", "/api/v1/experiment", {"name": "n", "permissions": "all"}, {}),
    ],
)
async def test_bad_input_is_never_a_500(
    shared_api: Api,
    exp: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    params: dict[str, Any],
) -> None:
    url = path.replace("{exp}", exp["id"])
    kwargs: dict[str, Any] = {"params": params}
    if body is not None:
        kwargs["json"] = body
    r = await shared_api.request(method, url, "alice", **kwargs)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["status"] == r.status_code
    if method == "POST" and path.endswith("/drift"):
        assert r.status_code == 422, r.text
    # Nothing half-written: the experiment still has no runs from these requests.
    r = await shared_api.request(
        "POST", f"/api/v1/experiment/{exp['id']}/drift/search", "alice", json={}
    )
    assert r.json() == []


async def test_dollar_keys_in_parameters_are_422(shared_api: Api, exp: dict[str, Any]) -> None:
    r = await shared_api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"model": "m", "parameters": {"ok": {"$inc": 1}}},
    )
    error = _assert_error(r, 422, "validation_error")
    assert error["errors"][0]["field"] == "parameters"
    assert "$inc" in error["errors"][0]["reason"]


async def test_large_but_storable_numbers_round_trip(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    params = {"big": 2**63 - 1, "small": -(2**63), "f": 1e308, "tiny": 5e-324}
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"model": "m", "parameters": params},
    )
    assert r.status_code == 201, r.text
    assert r.json()["parameters"] == params


# --- health -------------------------------------------------------------------------------------


async def test_health(api: Api) -> None:
    r = await api.request("GET", "/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = await api.request("GET", "/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_is_503_without_database(mongodb: ManagedProcess, issuer: Any) -> None:
    dead = f"mongodb://127.0.0.1:{free_port()}"
    settings = make_settings(
        mongodb, [issuer.url], mongodb_url=dead, startup_index_wait_seconds=0.2
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            r = await http.get("/health/live")
            assert r.status_code == 200
            r = await http.get("/health/ready")
            _assert_error(r, 503, "service_unavailable")
    finally:
        await lifespan.__aexit__(None, None, None)


# --- production mode ---------------------------------------------------------------------------

GOOD_PRODUCTION: dict[str, Any] = {
    "mode": "production",
    "mongodb_url": "mongodb://drift:s3cret@mongo:27017/?authSource=admin",
    "trusted_issuers": ["https://aai.egi.eu/auth/realms/egi"],
    # Prometheus /metrics (metrics/): production needs its token.
    "metrics_token": "a-metrics-token-of-43-characters-0123456789",
}


def test_production_configuration_accepted() -> None:
    settings = Settings(**GOOD_PRODUCTION)
    settings.check()
    assert settings.mode is Mode.production
    assert settings.production_problems() == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"trusted_issuers": []}, "TRUSTED_ISSUERS"),
        ({"trusted_issuers": ["http://issuer.example.org"]}, "https://"),
        (
            {"trusted_issuers": ["https://ok.example.org", "http://plain.example.org"]},
            "plain.example.org",
        ),
        ({"mongodb_url": "mongodb://drift:dev-only-secret@mongo:27017"}, "development-only"),
        ({"allow_insecure_issuers": True}, "INSECURE"),
    ],
)
def test_production_refuses_unfit_configuration(overrides: dict[str, Any], fragment: str) -> None:
    settings = Settings(**{**GOOD_PRODUCTION, **overrides})
    with pytest.raises(ConfigurationError) as caught:
        settings.check()
    assert fragment in str(caught.value)
    assert caught.value.problems
    # The app factory refuses too, before anything starts.
    with pytest.raises(ConfigurationError):
        create_app(settings)


def test_secret_does_not_leak_into_the_refusal() -> None:
    settings = Settings(
        **{
            **GOOD_PRODUCTION,
            "mongodb_url": "mongodb://u:dev-only-hunter2@mongo",
            "trusted_issuers": [],
        }
    )
    with pytest.raises(ConfigurationError) as caught:
        settings.check()
    assert "hunter2" not in str(caught.value)


def test_development_mode_allows_test_setups() -> None:
    Settings(mode=Mode.development, trusted_issuers=[], allow_insecure_issuers=True).check()


def test_production_is_the_default_mode() -> None:
    assert Settings().mode is Mode.production
    with pytest.raises(ConfigurationError):
        Settings().check()


def test_symmetric_algorithms_refused() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(algorithms=["none"])
