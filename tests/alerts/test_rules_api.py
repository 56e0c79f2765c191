"""Alert rules and silences through the API: defaults, validation (422 with field and
reason), changes, limits and permissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.alerts.service import MAX_RULES

from tests.conftest import Api

RULE = {"name": "drift", "condition": {"type": "dataset_drift"}}


def _later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.fixture
async def exp(api: Api) -> dict[str, Any]:
    await api.register("alice")
    await api.register("bob")
    bob = (await api.request("GET", "/api/v1/user/self", "bob")).json()
    return await api.experiment("alice", permissions=[{"entity": bob["id"], "level": "Read"}])


def _rules(exp: dict[str, Any]) -> str:
    return f"/api/v1/experiment/{exp['id']}/alert-rules"


async def test_a_rule_gets_alertmanager_defaults(api: Api, exp: dict[str, Any]) -> None:
    r = await api.request("POST", _rules(exp), "alice", json=RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["condition"] == {"type": "dataset_drift"}
    assert rule["models"] == []
    assert rule["tags"] == []
    assert rule["for_runs"] == 1
    assert rule["keep_firing_for"] == 0
    assert (rule["group_wait"], rule["group_interval"], rule["repeat_interval"]) == (
        30,
        300,
        4 * 3600,
    )
    assert rule["send_resolved"] is True
    assert rule["targets"] is None
    r = await api.request("GET", f"{_rules(exp)}/{rule['id']}", "bob")
    assert r.status_code == 200
    assert r.json() == rule
    r = await api.request("GET", _rules(exp), "bob")
    assert [x["id"] for x in r.json()] == [rule["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "condition"),
        ({**RULE, "condition": {"type": "weather"}}, "condition"),
        ({**RULE, "condition": {"type": "feature_drift"}}, "condition.feature_drift.feature"),
        (
            {**RULE, "condition": {"type": "feature_drift", "feature": "x", "min_effect": -1}},
            "condition.feature_drift.min_effect",
        ),
        ({**RULE, "condition": {"type": "violations", "kinds": ["Nonsense"]}}, "condition"),
        ({**RULE, "condition": {"type": "no_run"}}, "condition.no_run.within_seconds"),
        ({**RULE, "condition": {"type": "no_run", "within_seconds": 60}, "for_runs": 2}, "body"),
        ({**RULE, "for_runs": 0}, "for_runs"),
        ({**RULE, "group_wait": -1}, "group_wait"),
        ({**RULE, "repeat_interval": 0}, "repeat_interval"),
        ({**RULE, "keep_firing_for": 10 * 24 * 3600}, "keep_firing_for"),
        ({**RULE, "name": ""}, "name"),
        ({**RULE, "models": [""]}, "models.0"),
        ({**RULE, "colour": "red"}, "colour"),
    ],
)
async def test_bad_rules_are_422_with_the_field(
    api: Api, exp: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    r = await api.request("POST", _rules(exp), "alice", json=body)
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["code"] == "validation_error"
    assert error["errors"][0]["field"].startswith(field), error
    assert error["errors"][0]["reason"]


async def test_violation_kinds_take_flare_and_sagemaker_names(
    api: Api, exp: dict[str, Any]
) -> None:
    kinds = ["Bound", "Outlier", "Null", "data_type_check", "missing_column_check"]
    r = await api.request(
        "POST",
        _rules(exp),
        "alice",
        json={**RULE, "condition": {"type": "violations", "kinds": kinds}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["condition"]["kinds"] == kinds


async def test_replace_patch_and_delete(api: Api, exp: dict[str, Any]) -> None:
    rule = (await api.request("POST", _rules(exp), "alice", json=RULE)).json()
    url = f"{_rules(exp)}/{rule['id']}"
    r = await api.request(
        "PUT",
        url,
        "alice",
        json={"name": "failures", "condition": {"type": "run_failed"}, "models": ["m1", "m1"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["condition"] == {"type": "run_failed"}
    assert r.json()["models"] == ["m1"]
    assert r.json()["group_wait"] == 30  # PUT is whole: left-out fields take defaults
    r = await api.request("PATCH", url, "alice", json={"for_runs": 3, "send_resolved": False})
    assert r.status_code == 200, r.text
    assert (r.json()["for_runs"], r.json()["send_resolved"], r.json()["name"]) == (
        3,
        False,
        "failures",
    )
    # The patched whole must be valid: a dead man's switch counts no runs.
    r = await api.request(
        "PATCH", url, "alice", json={"condition": {"type": "no_run", "within_seconds": 60}}
    )
    assert r.status_code == 422, r.text
    assert "for_runs" in r.json()["message"]
    r = await api.request("DELETE", url, "alice")
    assert r.status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.request(method, url, "alice", json={} if method == "PATCH" else None)
        assert r.status_code == 404, method


async def test_readers_see_rules_and_only_managers_change_them(
    api: Api, exp: dict[str, Any]
) -> None:
    r = await api.request("POST", _rules(exp), "bob", json=RULE)
    assert r.status_code == 403
    await api.register("carol")
    r = await api.request("GET", _rules(exp), "carol")
    assert r.status_code == 404  # not even its existence
    r = await api.request("GET", f"/api/v1/experiment/{exp['id']}/alerts", "bob")
    assert r.status_code == 200
    assert r.json() == []


async def test_rules_per_experiment_are_limited(api: Api, exp: dict[str, Any]) -> None:
    for i in range(MAX_RULES):
        r = await api.request("POST", _rules(exp), "alice", json={**RULE, "name": f"r{i}"})
        assert r.status_code == 201, r.text
    r = await api.request("POST", _rules(exp), "alice", json=RULE)
    assert r.status_code == 409
    assert str(MAX_RULES) in r.json()["message"]


async def test_silences_validate_and_expire(api: Api, exp: dict[str, Any]) -> None:
    url = f"/api/v1/experiment/{exp['id']}/silences"
    for body, field in [
        ({"ends_at": _later(hours=1)}, "body"),
        ({"model": "m1", "ends_at": _later(hours=-1)}, "ends_at"),
        ({"model": "m1", "ends_at": _later(days=91)}, "ends_at"),
        ({"model": "m1", "ends_at": "2030-01-01T00:00:00"}, "ends_at"),
        ({"rule_id": "no-such-rule", "ends_at": _later(hours=1)}, "rule_id"),
    ]:
        r = await api.request("POST", url, "alice", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, body
    r = await api.request("POST", url, "bob", json={"model": "m1", "ends_at": _later(hours=1)})
    assert r.status_code == 403  # Edit makes silences
    r = await api.request("POST", url, "alice", json={"model": "m1", "ends_at": _later(hours=1)})
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["state"] == "active"
    r = await api.request("GET", url, "bob", params={"state": "active"})
    assert [s["id"] for s in r.json()] == [silence["id"]]
    r = await api.request("DELETE", f"{url}/{silence['id']}", "alice")
    assert r.status_code == 204
    r = await api.request("GET", url, "bob", params={"state": "active"})
    assert r.json() == []
    r = await api.request("GET", url, "bob")
    assert [s["state"] for s in r.json()] == ["expired"]
    r = await api.request("DELETE", f"{url}/nope", "alice")
    assert r.status_code == 404
