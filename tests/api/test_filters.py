"""Search filters: an allow-list of fields and operators, never passed to MongoDB as given."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.drifts.service import DRIFT_FILTER
from drift_backend.errors import ValidationFailed
from drift_backend.experiments.service import EXPERIMENT_FILTER
from drift_backend.store.filters import translate

from tests.conftest import Api

EXP_SEARCH = "/api/v1/experiment/search"


@pytest.fixture(scope="module")
async def searchable(shared_api: Api) -> dict[str, Any]:
    """An experiment with a few drift runs to search, on the module's shared backend."""
    await shared_api.request("POST", "/api/v1/user", "alice")
    exp = await shared_api.experiment("alice")
    runs = [
        {"model": "m1", "tags": ["prod", "eu"], "parameters": {"threshold": 0.5, "window": 7}},
        {"model": "m1", "tags": ["prod"], "concept_drift": {"drift": True, "parameters": {}}},
        {"model": "m2", "tags": ["eu"], "job_status": "Completed"},
        {"model": "m2", "tags": [], "parameters": {"window": 30, "nested": {"k": "v"}}},
    ]
    made = []
    for body in runs:
        r = await shared_api.request(
            "POST", f"/api/v1/experiment/{exp['id']}/drift", "alice", json=body
        )
        assert r.status_code == 201, r.text
        made.append(r.json())
    return {"experiment": exp, "runs": made}


async def _drift_search(
    api: Api, searchable: dict[str, Any], body: Any, **params: Any
) -> list[int]:
    exp_id = searchable["experiment"]["id"]
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp_id}/drift/search",
        "alice",
        json=body,
        params={"order_by": "asc", **params},
    )
    assert r.status_code == 200, r.text
    ids = [run["id"] for run in searchable["runs"]]
    return sorted(ids.index(item["id"]) for item in r.json())


# --- refused filters -------------------------------------------------------------------------

REFUSED: list[tuple[str, Any, str]] = [
    ("$where at top level", {"$where": "sleep(1000)"}, "$where"),
    ("$where inside $and", {"$and": [{"model": "m1"}, {"$where": "1"}]}, "$where"),
    ("$expr", {"$expr": {"$gt": ["$a", "$b"]}}, "$expr"),
    ("$function", {"$function": {"body": "x", "args": [], "lang": "js"}}, "$function"),
    ("$regex on a field", {"model": {"$regex": "^m"}}, "model.$regex"),
    ("$options", {"model": {"$options": "i"}}, "model.$options"),
    ("$elemMatch", {"tags": {"$elemMatch": {"$eq": "prod"}}}, "tags.$elemMatch"),
    ("$not", {"model": {"$not": {"$eq": "m1"}}}, "model.$not"),
    ("$nor", {"$nor": [{"model": "m1"}]}, "$nor"),
    ("$text", {"$text": {"$search": "x"}}, "$text"),
    ("$jsonSchema", {"$jsonSchema": {}}, "$jsonSchema"),
    ("unknown field", {"password": "x"}, "password"),
    ("experiment_id (server scope)", {"experiment_id": "x"}, "experiment_id"),
    ("sub-document match", {"concept_drift": {"drift": True}}, "concept_drift"),
    ("operator inside an $eq value", {"model": {"$eq": {"$gt": ""}}}, "model.$eq"),
    ("operator inside a plain value", {"model": {"$ne": {"$regex": "."}}}, "model.$ne"),
    ("object inside $in", {"tags": {"$in": [{"$regex": "p"}]}}, "tags.$in"),
    ("plain sub-document value", {"model": {"name": "m1"}}, "model.name"),
    ("operator in parameters value", {"parameters.window": {"$gt": {"$where": "1"}}}, ""),
    ("bad parameters path", {"parameters.$where": 1}, "parameters.$where"),
    ("parameters path with spaces", {"parameters.a b": 1}, "parameters.a b"),
    ("bare parameters", {"parameters": {"window": 7}}, "parameters"),
    ("$in not a list", {"tags": {"$in": "prod"}}, "tags.$in"),
    ("$exists not a bool", {"tags": {"$exists": 1}}, "tags.$exists"),
    ("wrong type for a string field", {"model": 5}, "model"),
    ("wrong type for a boolean field", {"drift_detected": "yes"}, "drift_detected"),
    ("bad timestamp", {"created_at": {"$gt": "yesterday"}}, "created_at.$gt"),
    ("number as timestamp", {"created_at": {"$gt": 1700000000}}, "created_at.$gt"),
    ("$and not a list", {"$and": {"model": "m1"}}, "$and"),
    ("empty $or", {"$or": []}, "$or"),
    ("$or of non-objects", {"$or": ["model"]}, "$or"),
    ("empty condition", {"model": {}}, "model"),
    ("filter not an object", ["model", "m1"], "body"),
    ("filter a string", "model == 'm1'", "body"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in REFUSED], ids=[n for n, *_ in REFUSED]
)
async def test_refused_drift_filters_are_422_naming_the_key(
    shared_api: Api, searchable: dict[str, Any], body: Any, field: str
) -> None:
    exp_id = searchable["experiment"]["id"]
    r = await shared_api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/search", "alice", json=body
    )
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["code"] == "validation_error"
    assert error["status"] == 422
    if field:
        assert error["errors"][0]["field"] == field
        assert field in error["message"]
    assert error["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"$where": "this.public == false"}, "$where"),
        ({"created_by": "someone"}, "created_by"),
        ({"permissions": {"$elemMatch": {"entity": "x"}}}, "permissions"),
        ({"name": {"$regex": ".*"}}, "name.$regex"),
        ({"$or": [{"public": False}, {"$expr": {}}]}, "$expr"),
        ({"parameters.x": 1}, "parameters.x"),  # experiments have no open parameters
    ],
)
async def test_refused_experiment_filters(shared_api: Api, body: Any, field: str) -> None:
    for who in (None, "alice", "admin"):
        r = await shared_api.request("POST", EXP_SEARCH, who, json=body)
        assert r.status_code == 422, (who, r.text)
        assert r.json()["errors"][0]["field"] == field


async def test_user_search_filter_is_checked_too(shared_api: Api) -> None:
    r = await shared_api.request("POST", "/api/v1/user/search", "admin", json={"$where": "1"})
    assert r.status_code == 422
    r = await shared_api.request(
        "POST", "/api/v1/user/search", "admin", json={"subject": {"$regex": "."}}
    )
    assert r.status_code == 422
    r = await shared_api.request("POST", "/api/v1/user/search", "admin", json={"subject": "alice"})
    assert r.status_code == 200
    assert [user["subject"] for user in r.json()] == ["alice"]


async def test_depth_limit(shared_api: Api, searchable: dict[str, Any]) -> None:
    def nested(levels: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": "m1"}
        for _ in range(levels):
            body = {"$and": [body]}
        return body

    exp_id = searchable["experiment"]["id"]
    url = f"/api/v1/experiment/{exp_id}/drift/search"
    depth = shared_api.settings.max_filter_depth
    r = await shared_api.request("POST", url, "alice", json=nested(depth - 1))
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2
    r = await shared_api.request("POST", url, "alice", json=nested(depth))
    assert r.status_code == 422
    assert "deeper" in r.json()["message"]
    # Far deeper than any limit (and than Python's recursion limit): a clean 422, not a 500.
    for levels in (500, 5000):
        raw = '{"$and":[' * levels + '{"model":"m1"}' + "]}" * levels
        r = await shared_api.request(
            "POST", url, "alice", content=raw, headers={"Content-Type": "application/json"}
        )
        # (FastAPI's body parser answers 400 when JSON nests past the recursion limit.)
        assert r.status_code in (400, 422), (levels, r.text[:200])
        assert r.json()["status"] == r.status_code


async def test_node_limit(shared_api: Api, searchable: dict[str, Any]) -> None:
    exp_id = searchable["experiment"]["id"]
    url = f"/api/v1/experiment/{exp_id}/drift/search"
    limit = shared_api.settings.max_filter_nodes
    small = {"$or": [{"model": f"m{i}"} for i in range(limit // 2 - 1)]}
    r = await shared_api.request("POST", url, "alice", json=small)
    assert r.status_code == 200, r.text
    big = {"$or": [{"model": f"m{i}"} for i in range(limit + 1)]}
    r = await shared_api.request("POST", url, "alice", json=big)
    assert r.status_code == 422
    assert "more than" in r.json()["message"]
    many_ops = {"model": {"$in": ["m1"], "$nin": ["m3"], "$ne": "m4", "$exists": True}}
    r = await shared_api.request("POST", url, "alice", json=many_ops)
    assert r.status_code == 200


# --- allowed filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, [0, 1, 2, 3]),
        ({}, [0, 1, 2, 3]),
        ({"model": "m1"}, [0, 1]),
        ({"model": {"$eq": "m2"}}, [2, 3]),
        ({"model": {"$ne": "m2"}}, [0, 1]),
        ({"model": {"$in": ["m2", "nope"]}}, [2, 3]),
        ({"model": {"$nin": ["m2"]}}, [0, 1]),
        ({"tags": "eu"}, [0, 2]),
        ({"tags": {"$all": ["prod", "eu"]}}, [0]),
        ({"tags": {"$in": ["eu"]}}, [0, 2]),
        ({"tags": []}, [3]),
        ({"job_status": "Completed"}, [2]),
        ({"drift_detected": True}, [1]),
        ({"concept_drift.drift": True}, [1]),
        ({"concept_drift.drift": {"$exists": False}}, [0, 2, 3]),
        ({"$and": [{"model": "m1"}, {"tags": "eu"}]}, [0]),
        ({"$or": [{"model": "m2", "tags": "eu"}, {"drift_detected": True}]}, [1, 2]),
        ({"$or": [{"$and": [{"model": "m1"}, {"tags": "prod"}]}, {"tags": []}]}, [0, 1, 3]),
        ({"parameters.window": {"$gte": 7}}, [0, 3]),
        ({"parameters.window": {"$gt": 7, "$lte": 30}}, [3]),
        ({"parameters.threshold": 0.5}, [0]),
        ({"parameters.nested.k": "v"}, [3]),
        ({"parameters.window": {"$exists": True}}, [0, 3]),
        ({"parameters.missing": None}, [0, 1, 2, 3]),
    ],
)
async def test_allowed_drift_filters(
    shared_api: Api, searchable: dict[str, Any], body: Any, expected: list[int]
) -> None:
    assert await _drift_search(shared_api, searchable, body) == expected


async def test_created_at_ranges_with_iso_strings(
    shared_api: Api, searchable: dict[str, Any]
) -> None:
    runs = searchable["runs"]
    first, last = runs[0]["created_at"], runs[-1]["created_at"]
    assert await _drift_search(shared_api, searchable, {"created_at": {"$gte": first}}) == [
        0,
        1,
        2,
        3,
    ]
    assert await _drift_search(
        shared_api, searchable, {"created_at": {"$gte": first, "$lte": last}}
    ) == [0, 1, 2, 3]
    assert await _drift_search(shared_api, searchable, {"created_at": {"$gt": last}}) == []
    assert await _drift_search(shared_api, searchable, {"created_at": {"$lt": first}}) == []
    # Z suffix and other offsets mean the same instant.
    instant = datetime.fromisoformat(first)
    zulu = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    in_tokyo = instant.astimezone(UTC).astimezone(timezone_plus(9)).isoformat()
    for spelled in (zulu, in_tokyo):
        found = await _drift_search(shared_api, searchable, {"created_at": {"$gte": spelled}})
        assert found == [0, 1, 2, 3], spelled
    later = (instant + timedelta(days=1)).isoformat()
    assert await _drift_search(shared_api, searchable, {"created_at": {"$gte": later}}) == []


def timezone_plus(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


async def test_experiment_search_filters(shared_api: Api) -> None:
    await shared_api.request("POST", "/api/v1/user", "alice")
    tag = uuid.uuid4().hex[:8]
    a = await shared_api.experiment("alice", name=f"f-{tag}-a", description="first")
    b = await shared_api.experiment("alice", name=f"f-{tag}-b", public=True)
    names = [a["name"], b["name"]]
    r = await shared_api.request(
        "POST", EXP_SEARCH, "alice", json={"name": {"$in": names}, "public": True}
    )
    assert [item["id"] for item in r.json()] == [b["id"]]
    r = await shared_api.request(
        "POST",
        EXP_SEARCH,
        "alice",
        json={"$and": [{"name": {"$in": names}}, {"created_at": {"$gte": a["created_at"]}}]},
        params={"sort_by": "name", "order_by": "asc"},
    )
    assert [item["id"] for item in r.json()] == [a["id"], b["id"]]
    r = await shared_api.request(
        "POST", EXP_SEARCH, "alice", json={"name": {"$in": names}, "id": b["id"]}
    )
    assert [item["id"] for item in r.json()] == [b["id"]]


# --- unit tests of translate ------------------------------------------------------------------


def _t(value: Any, schema: Any = DRIFT_FILTER, depth: int = 6, nodes: int = 100) -> Any:
    return translate(value, schema, max_depth=depth, max_nodes=nodes)


def test_translate_maps_ids_and_types() -> None:
    assert _t(None) == {}
    assert _t({}) == {}
    assert _t({"id": "abc"}) == {"_id": "abc"}
    assert _t({"model": {"$in": ["a", "b"]}}) == {"model": {"$in": ["a", "b"]}}
    got = _t({"created_at": {"$gte": "2026-01-02T03:04:05Z"}})
    assert got == {"created_at": {"$gte": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}}
    naive = _t({"created_at": {"$lt": "2026-01-02T03:04:05"}})
    assert naive["created_at"]["$lt"].tzinfo is not None  # naive means UTC
    assert _t({"$or": [{"tags": "x"}, {"parameters.a.b": 1.5}]}) == {
        "$or": [{"tags": "x"}, {"parameters.a.b": 1.5}]
    }
    assert _t({"parameters.flag": {"$exists": True}}) == {"parameters.flag": {"$exists": True}}


def test_translate_returns_new_objects() -> None:
    """The output is built, not the client's input passed through."""
    original = {"model": {"$in": ["a"]}}
    out = _t(original)
    assert out == original
    assert out is not original
    assert out["model"] is not original["model"]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"$where": "1"}, "$where"),
        ({"model": {"$regex": "x"}}, "model.$regex"),
        ({"unknown": 1}, "unknown"),
        ({"parameters": 1}, "parameters"),
        ({"parameters.": 1}, "parameters."),
        ({"parameters..x": 1}, "parameters..x"),
        ({"parameters.x": [1, {"$gt": 1}]}, "parameters.x"),
        ({"parameters.x": {"$in": [[1]]}}, "parameters.x.$in"),
        ({"model": {"$and": [{"model": "x"}]}}, "model.$and"),
        ({"drift_detected": 1}, "drift_detected"),
        ({"parameters.x": 2**64}, "parameters.x"),
        ({"parameters.x": {"$nin": [-(2**63) - 1]}}, "parameters.x.$nin"),
    ],
)
def test_translate_refuses(value: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _t(value)
    assert caught.value.status == 422
    assert caught.value.errors is not None
    assert caught.value.errors[0]["field"] == field


def test_translate_limits() -> None:
    _t({"$and": [{"$and": [{"model": "x"}]}]}, depth=3)
    with pytest.raises(ValidationFailed, match="deeper"):
        _t({"$and": [{"$and": [{"model": "x"}]}]}, depth=2)
    _t({"model": "a", "tags": "b"}, nodes=2)
    with pytest.raises(ValidationFailed, match="more than 2"):
        _t({"model": "a", "tags": "b", "job_status": "Running"}, nodes=2)
    with pytest.raises(ValidationFailed, match="more than"):
        _t({"model": {"$ne": "a", "$exists": True}}, nodes=2)


def test_experiment_schema_has_no_open_prefixes() -> None:
    with pytest.raises(ValidationFailed):
        _t({"parameters.x": 1}, EXPERIMENT_FILTER)
    assert _t({"permissions.entity": "u1"}, EXPERIMENT_FILTER) == {"permissions.entity": "u1"}
