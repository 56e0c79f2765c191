"""Idempotency-Key on the creating routes: a repeat answers the kept response and creates
nothing; another request under the same key is a 422; a repeat while the first still runs is
a 409; only 2xx answers are kept. Counts are read from the real database.

Every request of these tests carries a freshly signed token (the test issuer adds a new
``jti`` each time), so a replay found by the second request also shows that keys belong to
the verified caller, not to the token string.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream
from drift_backend.idempotency.repository import COLLECTION, RETENTION
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

from tests.conftest import Api

PREFIX = "/api/v1"
KEY = "Idempotency-Key"


def _key() -> str:
    return str(uuid.uuid4())


@dataclass
class Setup:
    api: Api
    db: Database
    experiment: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]


@pytest.fixture
async def setup(api: Api, raw_db: Callable[[Api], Database]) -> Setup:
    alice = await api.register("alice")
    bob = await api.register("bob")
    experiment = await api.experiment(
        "alice", permissions=[{"entity": bob["id"], "level": "Manage"}]
    )
    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/{experiment['id']}/baseline",
        "alice",
        json={"columns": {"x": [0.0, 1.0, 2.0, 3.0]}},
    )
    assert r.status_code == 201, r.text
    return Setup(api, raw_db(api), experiment, alice, bob)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    status: int
    body: Callable[[Setup, int], dict[str, Any]]
    #: what one successful request adds: (collection, filter) counted before and after
    counted: Callable[[Setup], Awaitable[int]]
    params: dict[str, str] | None = None


async def _count(db: Database, collection: str, query: dict[str, Any]) -> int:
    return int(await db[collection].count_documents(query))


async def _permission_entries(setup: Setup) -> int:
    doc = await setup.db.experiments.find_one({"_id": setup.experiment["id"]})
    assert doc is not None
    return len(doc["permissions"])


def _exp_count(setup: Setup) -> Awaitable[int]:
    return _count(setup.db, "experiments", {})


def _drift_count(setup: Setup) -> Awaitable[int]:
    return _count(setup.db, "drifts", {"experiment_id": setup.experiment["id"]})


def _baseline_count(setup: Setup) -> Awaitable[int]:
    return _count(setup.db, "baselines", {"experiment_id": setup.experiment["id"]})


async def _check_count(setup: Setup) -> int:
    runs = await _drift_count(setup)
    jobs = await _count(setup.db, "jobs", {})
    assert runs == jobs  # one queued job per check run
    return runs


ROUTES = [
    Route(
        "experiment",
        "POST",
        "/experiment",
        201,
        lambda setup, n: {"name": f"idem-{setup.experiment['id'][:8]}-{n}"},
        _exp_count,
    ),
    Route(
        "drift",
        "POST",
        "/experiment/{id}/drift",
        201,
        lambda setup, n: {"model": f"m{n}", "job_status": "Running"},
        _drift_count,
    ),
    Route(
        "baseline",
        "POST",
        "/experiment/{id}/baseline",
        201,
        lambda setup, n: {"columns": {"x": [float(n), 1.0, 2.0]}},
        _baseline_count,
    ),
    Route(
        "check",
        "POST",
        "/experiment/{id}/check",
        202,
        lambda setup, n: {"columns": {"x": [float(n), 0.5, 2.5]}},
        _check_count,
        params={"model": "m"},
    ),
    Route(
        "permissions",
        "PUT",
        "/experiment/{id}/permissions",
        200,
        lambda setup, n: {"entity": f"urn:test:group:idem-{n}", "level": "Read"},
        _permission_entries,
    ),
]


async def _send(
    setup: Setup, route: Route, n: int, key: str, who: str = "alice"
) -> httpx2.Response:
    return await setup.api.request(
        route.method,
        PREFIX + route.path.format(id=setup.experiment["id"]),
        who,
        json=route.body(setup, n),
        params=route.params,
        headers={KEY: key},
    )


async def _raw_headers(setup: Setup, values: list[bytes], json: dict[str, Any]) -> httpx2.Response:
    """A drift-run POST by alice with these raw ``Idempotency-Key`` header values."""
    headers = [(name.encode(), value.encode()) for name, value in setup.api.auth("alice").items()]
    headers += [(KEY.encode(), value) for value in values]
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/drift"
    return await setup.api.http.post(url, json=json, headers=headers)


def _assert_key_error(r: httpx2.Response, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status
    assert body["errors"][0]["field"] == KEY


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
async def test_repeat_answers_the_first_response_and_creates_nothing(
    setup: Setup, route: Route
) -> None:
    key = _key()
    before = await route.counted(setup)

    first = await _send(setup, route, 1, key)
    assert first.status_code == route.status, first.text
    assert "idempotent-replayed" not in first.headers
    assert await route.counted(setup) == before + 1

    again = await _send(setup, route, 1, key)
    assert again.status_code == route.status, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await route.counted(setup) == before + 1

    other_body = await _send(setup, route, 2, key)
    _assert_key_error(other_body, 422)
    assert await route.counted(setup) == before + 1

    # Without a key, the same request does create again (POST) or changes nothing (PUT).
    fresh = await _send(setup, route, 2, _key())
    assert fresh.status_code == route.status, fresh.text
    assert await route.counted(setup) == before + 2


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
async def test_another_caller_with_the_same_key_is_independent(setup: Setup, route: Route) -> None:
    key = _key()
    before = await route.counted(setup)
    alices = await _send(setup, route, 1, key, "alice")
    bobs = await _send(setup, route, 3, key, "bob")
    assert alices.status_code == bobs.status_code == route.status, bobs.text
    assert "idempotent-replayed" not in bobs.headers
    assert await route.counted(setup) == before + 2


async def test_registration_repeat_answers_201_not_409(api: Api, raw_db: Any) -> None:
    db = raw_db(api)
    key = _key()
    first = await api.request("POST", f"{PREFIX}/user", "alice", headers={KEY: key})
    assert first.status_code == 201, first.text
    again = await api.request("POST", f"{PREFIX}/user", "alice", headers={KEY: key})
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await db.users.count_documents({"subject": "alice"}) == 1
    # The route reads no body; the fingerprint still covers one.
    other = await api.request(
        "POST", f"{PREFIX}/user", "alice", headers={KEY: key}, json={"unexpected": 1}
    )
    _assert_key_error(other, 422)
    # Without the key the route answers as it always did.
    plain = await api.request("POST", f"{PREFIX}/user", "alice")
    assert plain.status_code == 409


async def test_same_key_on_another_route_is_422(setup: Setup) -> None:
    key = _key()
    exp_id = setup.experiment["id"]
    r = await setup.api.request(
        "POST",
        f"{PREFIX}/experiment/{exp_id}/drift",
        "alice",
        json={"model": "m"},
        headers={KEY: key},
    )
    assert r.status_code == 201, r.text
    r = await setup.api.request(
        "POST", f"{PREFIX}/experiment", "alice", json={"model": "m"}, headers={KEY: key}
    )
    _assert_key_error(r, 422)
    # The query string is part of the request too.
    r = await setup.api.request(
        "POST",
        f"{PREFIX}/experiment/{exp_id}/drift",
        "alice",
        json={"model": "m"},
        params={"x": "1"},
        headers={KEY: key},
    )
    _assert_key_error(r, 422)


# --- what is not kept -------------------------------------------------------------------------


async def test_a_4xx_answer_releases_the_key(setup: Setup) -> None:
    """4xx answers changed nothing (no partial writes), so they are not kept: the caller can
    fix the request and send it again under the same key."""
    key = _key()
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/drift"
    bad = await setup.api.request("POST", url, "alice", json={"tags": ["t"]}, headers={KEY: key})
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["field"] == "model"
    assert await setup.db[COLLECTION].count_documents({}) == 0
    good = await setup.api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert good.status_code == 201, good.text
    assert await _drift_count(setup) == 1


async def test_403_is_not_kept_so_registering_then_retrying_works(api: Api, raw_db: Any) -> None:
    db = raw_db(api)
    key = _key()
    body = {"name": f"idem-{uuid.uuid4().hex[:8]}"}
    r = await api.request("POST", f"{PREFIX}/experiment", "carol", json=body, headers={KEY: key})
    assert r.status_code == 403, r.text  # carol has not registered yet
    await api.register("carol")
    r = await api.request("POST", f"{PREFIX}/experiment", "carol", json=body, headers={KEY: key})
    assert r.status_code == 201, r.text
    assert await db.experiments.count_documents({"name": body["name"]}) == 1


async def test_404_is_not_kept_so_a_grant_then_retry_works(setup: Setup) -> None:
    api, exp_id = setup.api, setup.experiment["id"]
    await api.register("carol")
    key = _key()
    url = f"{PREFIX}/experiment/{exp_id}/drift"
    r = await api.request("POST", url, "carol", json={"model": "m"}, headers={KEY: key})
    assert r.status_code == 404, r.text  # invisible to carol
    carol = (await api.request("GET", f"{PREFIX}/user/self", "carol")).json()
    grant = {"entity": carol["id"], "level": "Edit"}
    r = await api.request("PUT", f"{PREFIX}/experiment/{exp_id}/permissions", "alice", json=grant)
    assert r.status_code == 200, r.text
    r = await api.request("POST", url, "carol", json={"model": "m"}, headers={KEY: key})
    assert r.status_code == 201, r.text


async def test_anonymous_and_refused_tokens_get_the_routes_own_401(api: Api) -> None:
    # Even a malformed key: who is calling is decided first.
    for headers in ({KEY: _key()}, {KEY: ""}, {KEY: _key(), "Authorization": "Bearer nope"}):
        r = await api.http.post(f"{PREFIX}/experiment", json={"name": "x"}, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")


# --- key format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"   ", b"k" * 256, "clé".encode(), b"tab\there", b'""'],
    ids=["empty", "blank", "too-long", "non-ascii", "control", "empty-quoted"],
)
async def test_malformed_keys_are_422(setup: Setup, raw: bytes) -> None:
    r = await _raw_headers(setup, [raw], {"model": "m"})
    _assert_key_error(r, 422)
    assert await _drift_count(setup) == 0


async def test_key_sent_twice_is_422(setup: Setup) -> None:
    r = await _raw_headers(setup, [b"a", b"b"], {"model": "m"})
    _assert_key_error(r, 422)


async def test_longest_key_and_structured_field_string_form(setup: Setup) -> None:
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/drift"
    longest = "k" * 255
    r = await setup.api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: longest})
    assert r.status_code == 201, r.text
    # The IETF draft's sf-string form names the same key as the bare value.
    quoted = await setup.api.request(
        "POST", url, "alice", json={"model": "m"}, headers={KEY: f'"{longest}"'}
    )
    assert quoted.status_code == 201
    assert quoted.headers["idempotent-replayed"] == "true"
    assert quoted.json()["id"] == r.json()["id"]


# --- in progress, abandoned and expired keys ----------------------------------------------------


async def test_concurrent_repeat_is_409_then_the_kept_answer(setup: Setup) -> None:
    """The first upload streams its body slowly; a repeat meanwhile is a 409."""
    api, exp_id = setup.api, setup.experiment["id"]
    url = f"{PREFIX}/experiment/{exp_id}/baseline"
    key = _key()
    first_chunk_sent = asyncio.Event()
    finish = asyncio.Event()
    csv_head, csv_tail = b"x,y\n1,2\n", b"3,4\n5,6\n"

    async def slow_body() -> AsyncIterator[bytes]:
        yield csv_head
        first_chunk_sent.set()
        await finish.wait()
        yield csv_tail

    headers = {KEY: key, "content-type": "text/csv"}
    first = asyncio.create_task(
        api.request("POST", url, "alice", content=slow_body(), headers=headers)
    )
    await first_chunk_sent.wait()
    busy = await api.request("POST", url, "alice", content=csv_head + csv_tail, headers=headers)
    _assert_key_error(busy, 409)
    assert busy.json()["code"] == "conflict"
    assert busy.headers["retry-after"] == "1"
    finish.set()
    done = await first
    assert done.status_code == 201, done.text
    assert done.json()["row_count"] == 3

    again = await api.request("POST", url, "alice", content=csv_head + csv_tail, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == done.json()["id"]
    assert await _baseline_count(setup) == 2  # the fixture's and this one


async def test_abandoned_pending_key_is_taken_over_after_its_lease(setup: Setup) -> None:
    """A backend that died mid-request leaves a pending record; its lease decides."""
    api, db = setup.api, setup.db
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/drift"
    key = _key()
    r = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert r.status_code == 201
    (record,) = await db[COLLECTION].find({}).to_list()
    assert record["state"] == "done"
    assert record["issuer"] == api.issuer.url
    assert record["subject"] == "alice"

    now = utcnow()
    await db[COLLECTION].update_one(
        {"_id": record["_id"]},
        {"$set": {"state": "pending", "lease_until": now + timedelta(seconds=30)}},
    )
    busy = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    _assert_key_error(busy, 409)

    await db[COLLECTION].update_one(
        {"_id": record["_id"]}, {"$set": {"lease_until": now - timedelta(seconds=1)}}
    )
    rerun = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert rerun.status_code == 201
    assert "idempotent-replayed" not in rerun.headers
    assert rerun.json()["id"] != r.json()["id"]
    assert await _drift_count(setup) == 2


async def test_kept_answers_expire_after_24_hours(setup: Setup) -> None:
    api, db = setup.api, setup.db
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/drift"
    key = _key()
    r = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert r.status_code == 201
    almost = utcnow() - RETENTION + timedelta(minutes=5)
    await db[COLLECTION].update_many({}, {"$set": {"created_at": almost}})
    again = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert again.headers["idempotent-replayed"] == "true"
    # Past the retention the TTL monitor may not have run yet; the key is free anyway.
    await db[COLLECTION].update_many({}, {"$set": {"created_at": almost - timedelta(minutes=10)}})
    rerun = await api.request("POST", url, "alice", json={"model": "m"}, headers={KEY: key})
    assert rerun.status_code == 201
    assert "idempotent-replayed" not in rerun.headers
    assert await _drift_count(setup) == 2


async def test_ttl_index_keeps_records_24_hours(api: Api, raw_db: Any) -> None:
    db = raw_db(api)
    await api.register("alice")  # the indexes exist once the app answers requests
    indexes = await db[COLLECTION].index_information()
    ttl = [spec for spec in indexes.values() if "expireAfterSeconds" in spec]
    assert len(ttl) == 1
    assert ttl[0]["key"] == [("created_at", 1)]
    assert ttl[0]["expireAfterSeconds"] == RETENTION.total_seconds() == 24 * 3600


# --- uploads ----------------------------------------------------------------------------------


def _arrow(rows: int) -> bytes:
    return arrow_stream(
        pa.table({"x": [float(i % 997) for i in range(rows)], "y": list(range(rows))})
    )


async def test_large_baseline_upload_with_a_key(setup: Setup) -> None:
    """Larger than DRIFT_MAX_BODY_BYTES (uploads have their own limit), streamed in chunks."""
    api = setup.api
    data = _arrow(150_000)
    assert len(data) > api.settings.max_body_bytes
    url = f"{PREFIX}/experiment/{setup.experiment['id']}/baseline"
    key = _key()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    headers = {KEY: key, "content-type": ARROW_STREAM}
    first = await api.request("POST", url, "alice", content=chunks(), headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["row_count"] == 150_000
    again = await api.request("POST", url, "alice", content=data, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    changed = data[:-1] + bytes([data[-1] ^ 1])
    other = await api.request("POST", url, "alice", content=changed, headers=headers)
    _assert_key_error(other, 422)
    assert await _baseline_count(setup) == 2


async def test_upload_limit_still_applies_and_releases_the_key(
    api_factory: Any, raw_db: Any
) -> None:
    api = await api_factory(max_upload_bytes=100_000)
    db = raw_db(api)
    await api.register("alice")
    exp = await api.experiment("alice")
    url = f"{PREFIX}/experiment/{exp['id']}/baseline"
    data = _arrow(20_000)
    assert len(data) > 100_000
    key = _key()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit trips mid-stream
        for start in range(0, len(data), 16_384):
            yield data[start : start + 16_384]

    headers = {KEY: key, "content-type": ARROW_STREAM}
    r = await api.request("POST", url, "alice", content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "max_bytes"
    assert await db[COLLECTION].count_documents({}) == 0
    small = _arrow(100)
    r = await api.request("POST", url, "alice", content=small, headers=headers)
    assert r.status_code == 201, r.text


async def test_unreachable_database_is_a_json_503_before_anything_runs(
    mongodb: Any, issuer: Any
) -> None:
    from drift_backend.main import create_app

    from tests.conftest import make_settings

    settings = make_settings(
        mongodb,
        [issuer.url],
        mongodb_url="mongodb://127.0.0.1:9",  # nothing listens there
        startup_index_wait_seconds=0,
    )
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            api = Api(http, issuer, settings)
            r = await api.request(
                "POST", f"{PREFIX}/experiment", "alice", json={"name": "x"}, headers={KEY: _key()}
            )
    finally:
        # A hang guard: shutdown with the database away once never ended (PyMongo's close).
        await asyncio.wait_for(lifespan.__aexit__(None, None, None), 60)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "service_unavailable"
    assert int(r.headers["retry-after"]) > 0


async def test_over_real_http_on_one_connection(live_backend: Any, issuer: Any) -> None:
    """uvicorn frames the replayed answer, and the kept connection serves the next request."""
    subject = f"idem-live-{uuid.uuid4().hex[:8]}"
    async with httpx2.AsyncClient(base_url=live_backend.url) as http:

        def auth() -> dict[str, str]:
            return {"Authorization": f"Bearer {issuer.token(subject)}"}

        key = _key()
        first = await http.post(f"{PREFIX}/user", headers={**auth(), KEY: key})
        assert first.status_code == 201, first.text
        body = {"name": f"idem-live-{uuid.uuid4().hex[:8]}"}
        answers = [
            await http.post(f"{PREFIX}/experiment", json=body, headers={**auth(), KEY: key + "e"})
            for _ in range(3)
        ]
        assert [r.status_code for r in answers] == [201, 201, 201]
        assert len({r.json()["id"] for r in answers}) == 1
        assert [r.headers.get("idempotent-replayed") for r in answers] == [None, "true", "true"]
        again = await http.post(f"{PREFIX}/user", headers={**auth(), KEY: key})
        assert again.status_code == 201
        assert again.json() == first.json()
