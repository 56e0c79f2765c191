"""After real checks (the embedded worker runs the statistics), ``/metrics`` carries the
drift gauges labelled by experiment name, model, feature and test, with the report's
values; an experiment's per-feature series can be turned off; no label is an id."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Api
from tests.metrics.conftest import scrape, select

FEATURE_FAMILIES = (
    "drift_monitor_feature_drifted",
    "drift_monitor_feature_p_value",
    "drift_monitor_feature_p_value_adjusted",
    "drift_monitor_feature_distance",
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def test_dataset_gauges_follow_the_newest_check(
    worker_api: Api, checked: dict[str, Any]
) -> None:
    series = await scrape(worker_api)
    name = checked["experiment"]["name"]
    for model, drifted in (("m1", 1.0), ("m2", 0.0)):
        labels = {"experiment": name, "model": model}
        report = checked["reports"][model]
        assert list(select(series, "drift_monitor_dataset_drift", **labels).values()) == [drifted]
        assert list(select(series, "drift_monitor_dataset_drift_share", **labels).values()) == [
            pytest.approx(report["drift_share"])
        ]
        run = checked["runs"][model]
        (last_run,) = select(series, "drift_monitor_last_run_timestamp_seconds", **labels).values()
        assert last_run == pytest.approx(_unix(run["created_at"]), abs=0.001)
        (last_check,) = select(
            series, "drift_monitor_last_check_timestamp_seconds", **labels
        ).values()
        assert last_check == last_run


async def test_feature_gauges_carry_the_report_values(
    worker_api: Api, checked: dict[str, Any]
) -> None:
    series = await scrape(worker_api)
    name = checked["experiment"]["name"]
    report = checked["reports"]["m1"]
    assert report["dataset_drift"] is True
    for feature in report["features"]:
        labels = {
            "experiment": name,
            "model": "m1",
            "feature": feature["feature"],
            "test": feature["test"],
        }
        drifted = select(series, "drift_monitor_feature_drifted", **labels)
        assert list(drifted.values()) == [1.0 if feature["drifted"] else 0.0], feature
        for family, key in (
            ("drift_monitor_feature_p_value", "p_value"),
            ("drift_monitor_feature_p_value_adjusted", "p_value_adjusted"),
            ("drift_monitor_feature_distance", "distance"),
        ):
            found = list(select(series, family, **labels).values())
            expected = [] if feature[key] is None else [pytest.approx(feature[key])]
            assert found == expected, (family, feature)
    # The drifting feature: x, by the normed Wasserstein distance (3,000 reference rows).
    x = select(series, "drift_monitor_feature_drifted", experiment=name, model="m1", feature="x")
    assert list(x.values()) == [1.0]
    assert dict(next(iter(x)))["test"] == "wasserstein"


async def test_runs_and_queue_gauges(worker_api: Api, checked: dict[str, Any]) -> None:
    series = await scrape(worker_api)
    runs = {dict(k)["status"]: v for k, v in select(series, "drift_monitor_runs").items()}
    assert set(runs) == {"Running", "Completed", "Failed"}
    assert runs["Completed"] >= 3
    jobs = {dict(k)["status"]: v for k, v in select(series, "drift_monitor_jobs").items()}
    assert set(jobs) == {"queued", "running", "failed"}
    assert jobs["queued"] == 0  # every check above was waited for
    assert select(series, "drift_monitor_job_queue_oldest_age_seconds") == {(): 0.0}
    assert select(series, "drift_monitor_jobs_stale") == {(): 0.0}
    assert select(series, "drift_monitor_up") == {(): 1.0}


async def test_client_reported_runs_give_the_dataset_gauge_without_check_series(
    worker_api: Api,
) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    for detected in (True, False):
        r = await api.request(
            "POST",
            f"/api/v1/experiment/{exp['id']}/drift",
            "alice",
            json={"job_status": "Completed", "model": "client-model", "drift_detected": detected},
        )
        assert r.status_code == 201, r.text
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"job_status": "Running", "model": "client-model"},
    )
    newest = r.json()
    series = await scrape(api)
    labels = {"experiment": exp["name"], "model": "client-model"}
    # The newest Completed run decides; the newest run of any status dates the model.
    assert list(select(series, "drift_monitor_dataset_drift", **labels).values()) == [0.0]
    (last_run,) = select(series, "drift_monitor_last_run_timestamp_seconds", **labels).values()
    assert last_run == pytest.approx(_unix(newest["created_at"]), abs=0.001)
    assert select(series, "drift_monitor_dataset_drift_share", **labels) == {}
    assert select(series, "drift_monitor_feature_drifted", experiment=exp["name"]) == {}


async def test_feature_series_turned_off_per_experiment(
    worker_api: Api, checked: dict[str, Any]
) -> None:
    api = worker_api
    exp = checked["experiment"]
    url = f"/api/v1/experiment/{exp['id']}"
    r = await api.request("PATCH", url, "alice", json={"metrics": {"features": False}})
    assert r.status_code == 200, r.text
    assert r.json()["metrics"] == {"features": False}
    try:
        series = await scrape(api)
        for family in FEATURE_FAMILIES:
            assert select(series, family, experiment=exp["name"]) == {}, family
        # The per-model series stay.
        assert select(series, "drift_monitor_dataset_drift", experiment=exp["name"])
    finally:
        r = await api.request("PATCH", url, "alice", json={"metrics": {"features": True}})
        assert r.status_code == 200, r.text
    series = await scrape(api)
    assert select(series, "drift_monitor_feature_drifted", experiment=exp["name"])


async def test_metrics_setting_is_validated_and_needs_manage(
    worker_api: Api, checked: dict[str, Any]
) -> None:
    api = worker_api
    url = f"/api/v1/experiment/{checked['experiment']['id']}"
    r = await api.request("PATCH", url, "alice", json={"metrics": {"features": "sometimes"}})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("metrics")
    r = await api.request("PATCH", url, "alice", json={"metrics": {"labels": ["run_id"]}})
    assert r.status_code == 422
    await api.register("bob")
    r = await api.request("PATCH", url, "bob", json={"metrics": {"features": False}})
    assert r.status_code == 404  # bob cannot even read it
    r = await api.request("GET", url, "alice")
    assert r.json()["metrics"] == {"features": True}


async def test_no_label_is_an_id(worker_api: Api, checked: dict[str, Any]) -> None:
    series = await scrape(worker_api)
    ids = {checked["experiment"]["id"], *(run["id"] for run in checked["runs"].values())}
    for (name, labels), _ in series.items():
        for key, value in labels:
            assert key not in {"run_id", "run", "batch_id", "user", "user_id", "id"}, name
            assert value not in ids, (name, key)
            assert not UUID.search(value), (name, key, value)


def _unix(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp).timestamp()
