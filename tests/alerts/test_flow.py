"""Alerts end to end with the embedded worker: checks and runs finish, the evaluation job and
the tick decide, and the notifications land in notify's outbox exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from drift_backend.alerts import evaluation
from drift_backend.notify import service as notify
from drift_backend.store.database import Database

from tests.alerts.conftest import evaluated, eventually, sent
from tests.checks.test_check_api import ARROW, arrow_bytes, frame
from tests.conftest import Api

PROMPT = {"group_wait": 0, "group_interval": 0, "repeat_interval": 3600}


async def _experiment(api: Api, **fields: Any) -> dict[str, Any]:
    return await api.experiment("alice", **fields)


async def _rule(api: Api, exp: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/alert-rules",
        "alice",
        json={"name": "rule", **PROMPT, **body},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _check(api: Api, exp: dict[str, Any], shift: float, seed: int) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        content=arrow_bytes(frame(seed, 2000, shift=shift)),
        headers={"content-type": ARROW},
    )
    assert r.status_code == 200, r.text
    run = dict(r.json())
    assert run["job_status"] == "Completed"
    return run


async def _run(api: Api, exp: dict[str, Any], model: str, **fields: Any) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"model": model, "job_status": "Completed", **fields},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _alerts(api: Api, exp: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.request("GET", f"/api/v1/experiment/{exp['id']}/alerts", "alice")
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_drifting_checks_fire_once_and_a_clean_one_resolves(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    r = await api.request(
        "PATCH",
        f"/api/v1/experiment/{exp['id']}",
        "alice",
        json={"drift_config": {"drift_share": 0.3}},
    )
    assert r.status_code == 200, r.text
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        params={"model": "m1"},
        json={"columns": frame(1, 3000)},
    )
    assert r.status_code == 201, r.text
    rule = await _rule(api, exp, condition={"type": "dataset_drift"})

    first = await _check(api, exp, shift=0.6, seed=2)
    [firing] = await sent(db, exp["id"], 1)
    assert firing["status"] == "firing"
    assert firing["_id"] == f"{rule['id']}:m1:1:1"
    assert firing["rule_id"] == rule["id"]
    assert firing["model"] == "m1"
    assert firing["run_id"] == first["id"]
    assert firing["experiment_name"] == exp["name"]
    assert [(f["name"], f["kind"]) for f in firing["features"]] == [("x", "drift")]
    assert firing["features"][0]["test"] == "wasserstein"
    assert firing["values"]["drifted_features"] == 1
    assert firing["values"]["drift_share"] > 0.3
    assert firing["exception"] is None
    [alert] = await _alerts(api, exp)
    assert alert["state"] == "firing"
    assert alert["features"] == [{"name": "x", "kind": "drift"}]

    # Still drifting, within repeat_interval: nothing new.
    second = await _check(api, exp, shift=0.6, seed=3)
    await evaluated(db, second["id"])
    assert len(await notify.notifications(db, exp["id"])) == 1

    # Clean: resolved, said once.
    clean = await _check(api, exp, shift=0.0, seed=4)
    docs = await sent(db, exp["id"], 2)
    assert [d["status"] for d in docs] == ["firing", "resolved"]
    resolved = docs[1]
    assert resolved["_id"] == f"{rule['id']}:m1:1:2"
    assert resolved["run_id"] == clean["id"]
    assert resolved["ends_at"] is not None
    assert resolved["starts_at"] == firing["starts_at"]
    [alert] = await _alerts(api, exp)
    assert alert["state"] == "resolved"

    # A worker retrying the evaluations, and ticks racing them, queue nothing more.
    await asyncio.gather(
        *(evaluation.evaluate_run(db, run["id"]) for run in (first, second, clean)),
        *(evaluation.tick(db) for _ in range(3)),
    )
    assert len(await notify.notifications(db, exp["id"])) == 2


async def test_a_failed_run_fires_run_failed_with_its_error(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    await _rule(api, exp, condition={"type": "run_failed"}, models=["m1"], tags=["nightly"])
    # Out of scope: another model, or without the tag.
    other = await _run(
        api, exp, "m2", job_status="Failed", tags=["nightly"], error={"type": "E", "message": "x"}
    )
    untagged = await _run(api, exp, "m1", job_status="Failed", error={"type": "E", "message": "x"})
    for run in (other, untagged):
        await evaluated(db, run["id"])
    assert await notify.notifications(db, exp["id"]) == []

    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"model": "m1", "job_status": "Running", "tags": ["nightly", "gpu"]},
    )
    run = r.json()
    r = await api.request(
        "PUT",
        f"/api/v1/experiment/{exp['id']}/drift/{run['id']}",
        "alice",
        json={
            "model": "m1",
            "job_status": "Failed",
            "tags": ["nightly", "gpu"],
            "error": {"type": "ValueError", "message": "boom"},
        },
    )
    assert r.status_code == 200, r.text
    [message] = await sent(db, exp["id"], 1)
    assert message["status"] == "firing"
    assert message["exception"] == "ValueError: boom"
    assert message["run_id"] == run["id"]


async def test_no_run_fires_after_its_deadline_and_a_run_resolves_it(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    await _rule(api, exp, condition={"type": "no_run", "within_seconds": 1}, models=["quiet"])
    [message] = await sent(db, exp["id"], 1)
    assert message["status"] == "firing"
    assert message["model"] == "quiet"
    assert message["values"]["seconds_since_last_run"] >= 1
    run = await _run(api, exp, "quiet")
    docs = await sent(db, exp["id"], 2)
    assert [d["status"] for d in docs] == ["firing", "resolved"]
    assert docs[1]["run_id"] == run["id"]


async def test_a_silence_holds_notifications_back_until_it_is_expired(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    rule = await _rule(api, exp, condition={"type": "run_failed"})
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/silences",
        "alice",
        json={"rule_id": rule["id"], "model": "m1", "ends_at": ends, "comment": "maintenance"},
    )
    assert r.status_code == 201, r.text
    silence = r.json()
    assert silence["state"] == "active"

    run = await _run(api, exp, "m1", job_status="Failed", error={"type": "E", "message": "x"})
    await evaluated(db, run["id"])
    [alert] = await _alerts(api, exp)
    assert alert["state"] == "firing"
    assert alert["muted"] == "silenced"
    assert await notify.notifications(db, exp["id"]) == []

    r = await api.request(
        "DELETE", f"/api/v1/experiment/{exp['id']}/silences/{silence['id']}", "alice"
    )
    assert r.status_code == 204
    # Still firing when the silence ends: it says so now.
    [message] = await sent(db, exp["id"], 1)
    assert message["status"] == "firing"
    [alert] = await _alerts(api, exp)
    assert alert["muted"] is None
    r = await api.request(
        "GET", f"/api/v1/experiment/{exp['id']}/silences", "alice", params={"state": "expired"}
    )
    assert [s["id"] for s in r.json()] == [silence["id"]]


async def test_drift_alerts_are_inhibited_while_the_model_has_no_baseline(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    await _rule(api, exp, condition={"type": "dataset_drift"})
    run = await _run(api, exp, "m1", data_drift={"drift": True, "parameters": {}})
    await evaluated(db, run["id"])
    [alert] = await _alerts(api, exp)
    assert alert["state"] == "firing"
    assert alert["muted"] == "inhibited"
    assert await notify.notifications(db, exp["id"]) == []


async def test_deleting_a_rule_or_the_experiment_deletes_its_state(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    rule = await _rule(api, exp, condition={"type": "run_failed"})
    run = await _run(api, exp, "m1", job_status="Failed", error={"type": "E", "message": "x"})
    await evaluated(db, run["id"])
    assert len(await _alerts(api, exp)) == 1
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/silences",
        "alice",
        json={"model": "m1", "ends_at": ends},
    )
    assert r.status_code == 201
    r = await api.request("DELETE", f"/api/v1/experiment/{exp['id']}", "alice")
    assert r.status_code == 204
    for name in ("alert_rules", "alert_groups", "silences"):
        assert await db[name].count_documents({"experiment_id": exp["id"]}) == 0, name
    assert await db.alert_groups.count_documents({"rule_id": rule["id"]}) == 0


async def test_the_firing_count_by_experiment(alerts_api: Api, alerts_db: Database) -> None:
    from drift_backend.alerts.service import firing_count

    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    await _rule(api, exp, condition={"type": "run_failed"})
    for model in ("a", "b"):
        run = await _run(api, exp, model, job_status="Failed", error={"type": "E", "message": ""})
        await evaluated(db, run["id"])
    counts = await eventually(lambda: firing_count(db), lambda c: exp["id"] in c, "firing")
    assert counts[exp["id"]] == 2


async def test_no_run_on_every_model_watches_the_models_run_so_far(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    await _run(api, exp, "seen-before")
    await _rule(api, exp, condition={"type": "no_run", "within_seconds": 1})
    [message] = await sent(db, exp["id"], 1)
    assert message["model"] == "seen-before"
    assert message["status"] == "firing"


async def test_an_outbox_left_by_a_dead_worker_is_handed_over_once(
    alerts_api: Api, alerts_db: Database
) -> None:
    """A worker that wrote its decision and died before handing the notification to notify:
    the tick finds the group due and hands it over, once, however often it is looked at."""
    from drift_backend.alerts import repository
    from drift_backend.alerts.groups import to_fields
    from drift_backend.alerts.state import Detail, Group, Notice, State

    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    rule = await _rule(api, exp, condition={"type": "run_failed"})
    run = await _run(api, exp, "m1", job_status="Failed", error={"type": "E", "message": "x"})
    await evaluated(db, run["id"])
    [first] = await sent(db, exp["id"], 1)
    # As the dead worker left it: the next decision (resolved) written, not handed over.
    now = datetime.now(UTC)
    rule_doc = await repository.find_rule(db, rule["id"])
    assert rule_doc is not None
    notice = Notice(
        status="resolved",
        episode=1,
        n=2,
        starts_at=first["starts_at"],
        ends_at=now,
        detail=Detail(summary="run completed", run_id="later-run"),
        run_id="later-run",
    )
    entry = evaluation.outbox_entry(notice, rule_doc, "m1", {"name": exp["name"]})
    current = await repository.get_group(db, f"{rule['id']}:m1")
    assert current is not None
    group = Group(state=State.resolved, episode=1, sent=2, active_at=first["starts_at"])
    fields = {**to_fields(group), "outbox": [entry], "due_at": now}
    assert await repository.save_group(db, current["_id"], current["version"], fields)

    docs = await sent(db, exp["id"], 2)
    assert [d["_id"] for d in docs] == [f"{rule['id']}:m1:1:1", f"{rule['id']}:m1:1:2"]
    assert docs[1]["status"] == "resolved"
    await eventually(
        lambda: repository.get_group(db, f"{rule['id']}:m1"),
        lambda g: g is not None and g["outbox"] == [],
        "the outbox cleared",
    )
    await asyncio.gather(evaluation.tick(db), evaluation.evaluate_run(db, run["id"]))
    assert len(await notify.notifications(db, exp["id"])) == 2


async def test_changing_a_rules_condition_starts_afresh_and_timing_keeps_state(
    alerts_api: Api, alerts_db: Database
) -> None:
    api, db = alerts_api, alerts_db
    exp = await _experiment(api)
    rule = await _rule(api, exp, condition={"type": "run_failed"})
    run = await _run(api, exp, "m1", job_status="Failed", error={"type": "E", "message": "x"})
    await evaluated(db, run["id"])
    url = f"/api/v1/experiment/{exp['id']}/alert-rules/{rule['id']}"
    r = await api.request("PATCH", url, "alice", json={"name": "renamed", "repeat_interval": 60})
    assert r.status_code == 200, r.text
    [alert] = await _alerts(api, exp)
    assert (alert["state"], alert["rule_name"]) == ("firing", "renamed")
    r = await api.request("PATCH", url, "alice", json={"models": ["m2"]})
    assert r.status_code == 200, r.text
    assert await _alerts(api, exp) == []
