"""Experiments (names, replace vs patch, permissions, deletion, timestamps) and users."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api

EXP = "/api/v1/experiment"


def _assert_iso_utc(value: str) -> None:
    stamp = datetime.fromisoformat(value)
    assert stamp.utcoffset() == timedelta(0), value
    assert value.endswith("+00:00"), value


# --- names --------------------------------------------------------------------------------------


async def test_names_are_unique(api: Api) -> None:
    await api.register("alice")
    await api.register("bob")
    first = await api.experiment("alice", name="shared-name")
    r = await api.request("POST", EXP, "bob", json={"name": "shared-name"})
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    # Renaming onto a taken name is a conflict too, and changes nothing.
    other = await api.experiment("bob", name="other-name")
    for method in ("PATCH", "PUT"):
        body = {"name": "shared-name", "permissions": other["permissions"]}
        r = await api.request(method, f"{EXP}/{other['id']}", "bob", json=body)
        assert r.status_code == 409, (method, r.text)
    r = await api.request("GET", f"{EXP}/{other['id']}", "bob")
    assert r.json()["name"] == "other-name"
    assert (await api.request("GET", f"{EXP}/{first['id']}", "alice")).status_code == 200


async def test_concurrent_creates_with_one_name(api: Api) -> None:
    await api.register("alice")
    await api.register("bob")
    name = f"race-{uuid.uuid4().hex[:6]}"
    responses = await asyncio.gather(
        *[
            api.request("POST", EXP, who, json={"name": name})
            for who in ("alice", "bob", "alice", "bob", "alice", "bob", "alice", "bob")
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 7, codes
    r = await api.request("POST", f"{EXP}/search", "admin", json={"name": name})
    assert len(r.json()) == 1


async def test_name_is_trimmed_and_required(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice", name="  padded  ")
    assert exp["name"] == "padded"
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 129}, {"name": 7}):
        r = await api.request("POST", EXP, "alice", json=body)
        assert r.status_code == 422, body
        assert r.json()["errors"][0]["field"] == "name"


# --- shape, defaults, timestamps -------------------------------------------------------------


async def test_private_by_default_and_response_shape(api: Api) -> None:
    user = await api.register("alice")
    exp = await api.experiment("alice", description="d")
    assert exp["public"] is False
    assert set(exp) == {
        "id",
        "name",
        "description",
        "public",
        "permissions",
        "created_at",
        "updated_at",
        "drift_config",
        "default_baselines",
        "metrics",
    }
    assert exp["default_baselines"] == []
    assert exp["metrics"] == {"features": True}
    assert exp["drift_config"]["correction"] == "bh"
    assert uuid.UUID(exp["id"])
    assert exp["permissions"] == [{"entity": user["id"], "level": "Manage"}]
    _assert_iso_utc(exp["created_at"])
    _assert_iso_utc(exp["updated_at"])
    await api.register("bob")
    assert (await api.request("GET", f"{EXP}/{exp['id']}", "bob")).status_code == 404
    assert (await api.request("GET", f"{EXP}/{exp['id']}")).status_code == 404


async def test_creator_always_gets_manage(api: Api) -> None:
    user = await api.register("alice")
    exp = await api.experiment(
        "alice",
        permissions=[
            {"entity": user["id"], "level": "Read"},
            {"entity": "urn:x", "level": "Edit"},
            {"entity": "urn:x", "level": "Read"},
        ],
    )
    entries = {entry["entity"]: entry["level"] for entry in exp["permissions"]}
    assert entries == {user["id"]: "Manage", "urn:x": "Edit"}
    for entry in exp["permissions"]:
        assert set(entry) == {"entity", "level"}


async def test_extra_permission_keys_and_bad_levels_refused(api: Api) -> None:
    await api.register("alice")
    for entry in (
        {"entity": "urn:x", "level": "Owner"},
        {"entity": "urn:x", "level": "Read", "extra": 1},
        {"entity": "", "level": "Read"},
        {"level": "Read"},
    ):
        r = await api.request(
            "POST", EXP, "alice", json={"name": uuid.uuid4().hex, "permissions": [entry]}
        )
        assert r.status_code == 422, entry
        assert r.json()["errors"][0]["field"].startswith("permissions")


# --- PUT and PATCH ----------------------------------------------------------------------------


async def test_put_is_a_full_replace_that_keeps_a_manager(api: Api) -> None:
    user = await api.register("alice")
    exp = await api.experiment(
        "alice", description="old", public=True, permissions=[{"entity": "urn:g", "level": "Read"}]
    )
    url = f"{EXP}/{exp['id']}"
    # Without permissions (drift-watch clients may send only some fields): 422, nothing changes.
    r = await api.request("PUT", url, "alice", json={"name": exp["name"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "permissions"
    r = await api.request(
        "PUT",
        url,
        "alice",
        json={"name": exp["name"], "permissions": [{"entity": user["id"], "level": "Edit"}]},
    )
    assert r.status_code == 422
    assert (await api.request("GET", url, "alice")).json() == exp

    manage = [{"entity": user["id"], "level": "Manage"}]
    r = await api.request("PUT", url, "alice", json={"name": "renamed", "permissions": manage})
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["name"] == "renamed"
    assert replaced["description"] is None  # omitted: reset
    assert replaced["public"] is False  # omitted: reset to the default
    assert replaced["permissions"] == manage
    assert replaced["created_at"] == exp["created_at"]
    assert replaced["updated_at"] > exp["updated_at"]
    # Server fields echoed back (as drift-watch clients do) are ignored.
    echo = {**replaced, "id": "other", "created_at": "2000-01-01T00:00:00+00:00"}
    r = await api.request("PUT", url, "alice", json=echo)
    assert r.status_code == 200
    assert r.json()["id"] == exp["id"]
    assert r.json()["created_at"] == exp["created_at"]


async def test_patch_changes_only_sent_fields(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment(
        "alice", description="keep", public=True, permissions=[{"entity": "urn:g", "level": "Read"}]
    )
    url = f"{EXP}/{exp['id']}"
    r = await api.request("PATCH", url, "alice", json={"name": "new-name"})
    assert r.status_code == 200
    patched = r.json()
    assert patched["name"] == "new-name"
    for key in ("description", "public", "permissions", "created_at"):
        assert patched[key] == exp[key], key
    r = await api.request("PATCH", url, "alice", json={"public": False})
    assert r.json()["public"] is False
    assert r.json()["description"] == "keep"
    r = await api.request("PATCH", url, "alice", json={"description": None})
    assert r.json()["description"] is None
    r = await api.request("PATCH", url, "alice", json={})
    assert r.status_code == 200
    assert r.json()["name"] == "new-name"
    # PATCH refuses unknown keys and a permission list without a manager.
    r = await api.request("PATCH", url, "alice", json={"nmae": "typo"})
    assert r.status_code == 422
    r = await api.request(
        "PATCH", url, "alice", json={"permissions": [{"entity": "urn:g", "level": "Edit"}]}
    )
    assert r.status_code == 422
    assert (await api.request("GET", url, "alice")).json()["permissions"] == exp["permissions"]


# --- permission endpoints -----------------------------------------------------------------------


async def test_permission_endpoints(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    exp = await api.experiment("alice")
    url = f"{EXP}/{exp['id']}/permissions"

    r = await api.request("GET", url, "alice")
    assert r.json() == [{"entity": alice["id"], "level": "Manage"}]
    # By user id.
    r = await api.request("PUT", url, "alice", json={"entity": bob["id"], "level": "Read"})
    assert r.status_code == 200, r.text
    assert {"entity": bob["id"], "level": "Read"} in r.json()
    assert (await api.request("GET", f"{EXP}/{exp['id']}", "bob")).status_code == 200
    # Change the level by email.
    r = await api.request("PUT", url, "alice", json={"email": "bob@example.org", "level": "Manage"})
    assert r.status_code == 200
    levels = {entry["entity"]: entry["level"] for entry in r.json()}
    assert levels == {alice["id"]: "Manage", bob["id"]: "Manage"}
    # An entitlement.
    r = await api.request(
        "PUT", url, "bob", json={"entity": "urn:test:group:team-c", "level": "Edit"}
    )
    assert r.status_code == 200
    for entry in r.json():
        assert set(entry) == {"entity", "level"}
    await api.register("carol")
    r = await api.request("POST", f"{EXP}/{exp['id']}/drift", "carol", json={"model": "m"})
    assert r.status_code == 201
    # Unknown email: 404; both or neither target: 422.
    r = await api.request(
        "PUT", url, "alice", json={"email": "nobody@example.org", "level": "Read"}
    )
    assert r.status_code == 404
    r = await api.request("PUT", url, "alice", json={"level": "Read"})
    assert r.status_code == 422
    r = await api.request(
        "PUT", url, "alice", json={"entity": "x", "email": "bob@example.org", "level": "Read"}
    )
    assert r.status_code == 422

    # Remove.
    r = await api.request("DELETE", url, "alice", params={"entity": "urn:test:group:team-c"})
    assert r.status_code == 200
    assert "urn:test:group:team-c" not in {entry["entity"] for entry in r.json()}
    r = await api.request("DELETE", url, "alice", params={"entity": "urn:test:group:team-c"})
    assert r.status_code == 404
    r = await api.request("DELETE", url, "alice", params={"entity": bob["id"]})
    assert r.status_code == 200
    assert (await api.request("GET", f"{EXP}/{exp['id']}", "bob")).status_code == 404
    # The last manager stays.
    r = await api.request("DELETE", url, "alice", params={"entity": alice["id"]})
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    r = await api.request("PUT", url, "alice", json={"entity": alice["id"], "level": "Read"})
    assert r.status_code in (409, 422)
    r = await api.request("GET", url, "alice")
    assert r.json() == [{"entity": alice["id"], "level": "Manage"}]


async def test_concurrent_grants_lose_no_update(api: Api) -> None:
    """Concurrent changes either land or answer 409; none is silently overwritten."""
    alice = await api.register("alice")
    exp = await api.experiment("alice")
    url = f"{EXP}/{exp['id']}/permissions"
    entities = [f"urn:race:{i}" for i in range(6)]
    responses = await asyncio.gather(
        *[
            api.request("PUT", url, "alice", json={"entity": entity, "level": "Read"})
            for entity in entities
        ]
    )
    assert {r.status_code for r in responses} <= {200, 409}
    landed = {entity for entity, r in zip(entities, responses, strict=True) if r.status_code == 200}
    assert landed
    final = (await api.request("GET", url, "alice")).json()
    assert {entry["entity"] for entry in final} == landed | {alice["id"]}


# --- delete -------------------------------------------------------------------------------------


async def test_delete_removes_runs(api: Api, raw_db: Any) -> None:
    await api.register("alice")
    doomed = await api.experiment("alice")
    kept = await api.experiment("alice")
    for exp in (doomed, kept):
        for _ in range(3):
            r = await api.request("POST", f"{EXP}/{exp['id']}/drift", "alice", json={"model": "m"})
            assert r.status_code == 201
    r = await api.request("DELETE", f"{EXP}/{doomed['id']}", "alice")
    assert r.status_code == 204
    assert (await api.request("GET", f"{EXP}/{doomed['id']}", "alice")).status_code == 404
    db = raw_db(api)
    assert await db.drifts.count_documents({"experiment_id": doomed["id"]}) == 0
    assert await db.drifts.count_documents({"experiment_id": kept["id"]}) == 3
    # The name is free again.
    again = await api.experiment("alice", name=doomed["name"])
    assert again["id"] != doomed["id"]
    r = await api.request("POST", f"{EXP}/{again['id']}/drift/search", "alice", json={})
    assert r.json() == []


# --- users --------------------------------------------------------------------------------------


async def test_register_and_self(api: Api) -> None:
    r = await api.request("GET", "/api/v1/user/self", "alice")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    user = await api.register("alice")
    assert user["subject"] == "alice"
    assert user["issuer"] == api.issuer.url
    assert user["email"] == "alice@example.org"
    _assert_iso_utc(user["created_at"])
    r = await api.request("POST", "/api/v1/user", "alice")
    assert r.status_code == 409
    r = await api.request("GET", "/api/v1/user/self", "alice")
    assert r.status_code == 200
    assert r.json() == user
    # PUT /user/self refreshes the stored email from the token.
    token = api.issuer.token("alice", email="alice@new.example.org")
    r = await api.request("PUT", "/api/v1/user/self", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["email"] == "alice@new.example.org"
    assert r.json()["id"] == user["id"]
    assert r.json()["updated_at"] >= user["updated_at"]
    r = await api.request("PUT", "/api/v1/user/self", "bob")
    assert r.status_code == 404


async def test_user_search_is_admin_only(api: Api) -> None:
    await api.register("alice")
    await api.register("bob")
    r = await api.request("POST", "/api/v1/user/search", "admin", json={"email": "bob@example.org"})
    assert r.status_code == 200
    assert [user["subject"] for user in r.json()] == ["bob"]
    assert '"total":1' in r.headers["x-pagination"]
    r = await api.request(
        "POST", "/api/v1/user/search", "admin", json={}, params={"sort_by": "subject"}
    )
    assert [user["subject"] for user in r.json()] == ["bob", "alice"]  # desc by default
    for who in ("alice", "bob"):
        assert (await api.request("POST", "/api/v1/user/search", who, json={})).status_code == 403
    assert (await api.request("POST", "/api/v1/user/search", json={})).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/entitlement", "/api/v1/entitlements"])
async def test_entitlements(api: Api, path: str) -> None:
    r = await api.request("GET", path, "bob")
    assert r.json() == {"items": ["urn:test:group:team-b"]}
    r = await api.request("GET", path, "admin")
    assert r.json() == {"items": ["urn:test:group:admins"]}
    token = api.issuer.token("dave")  # no entitlement claim at all
    r = await api.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {"items": []}
