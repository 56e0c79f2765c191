"""The short user-record cache never hides a registration or an update made through the API."""

from __future__ import annotations

from tests.conftest import Api


async def test_registration_and_email_update_are_seen_at_once(api: Api) -> None:
    old = api.issuer.token("dora", email="old@example.org", email_verified=True)
    new = api.issuer.token("dora", email="new@example.org", email_verified=True)
    r = await api.http.get("/api/v1/user/self", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 404
    r = await api.http.post("/api/v1/user", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 201
    r = await api.http.get("/api/v1/user/self", headers={"Authorization": f"Bearer {old}"})
    assert r.json()["email"] == "old@example.org"
    r = await api.http.put("/api/v1/user/self", headers={"Authorization": f"Bearer {new}"})
    assert r.json()["email"] == "new@example.org"
    r = await api.http.get("/api/v1/user/self", headers={"Authorization": f"Bearer {new}"})
    assert r.json()["email"] == "new@example.org"
