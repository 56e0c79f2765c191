"""Granting by email matches only addresses the issuer verified, and only one user."""

from __future__ import annotations

from tests.conftest import Api


async def test_grant_by_verified_email(api: Api) -> None:
    await api.register("alice")
    bob = await api.register("bob")
    exp = await api.experiment("alice")
    url = f"/api/v1/experiment/{exp['id']}/permissions"
    r = await api.request("PUT", url, "alice", json={"email": "bob@example.org", "level": "Edit"})
    assert r.status_code == 200, r.text
    assert {"entity": bob["id"], "level": "Edit"} in r.json()


async def test_unverified_email_never_matches(api: Api) -> None:
    await api.register("alice")
    await api.register("carol")  # carol's email_verified is false
    exp = await api.experiment("alice")
    url = f"/api/v1/experiment/{exp['id']}/permissions"
    r = await api.request("PUT", url, "alice", json={"email": "carol@example.org", "level": "Read"})
    assert r.status_code == 404
    assert "verified email" in r.json()["message"]


async def test_ambiguous_email_is_a_conflict(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    for subject in ("twin-1", "twin-2"):
        token = api.issuer.token(subject, email="twin@example.org", email_verified=True)
        r = await api.http.post("/api/v1/user", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
    url = f"/api/v1/experiment/{exp['id']}/permissions"
    r = await api.request("PUT", url, "alice", json={"email": "twin@example.org", "level": "Read"})
    assert r.status_code == 409
