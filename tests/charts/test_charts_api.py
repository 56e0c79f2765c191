"""The chart routes over seeded runs and checks with known outcomes: exact bucket counts,
history values and heatmap cells, CSV, permissions and bad parameters."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.charts import repository as chart_store
from drift_backend.store.database import Database

from tests.charts.conftest import PREFIX, add_check, add_run, feature, report
from tests.conftest import Api

DAY: dict[str, Any] = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "buckets": 25}


def charts(experiment: dict[str, Any], route: str) -> str:
    return f"{PREFIX}/experiment/{experiment['id']}/charts/{route}"


async def get(api: Api, url: str, who: str | None = "alice", **params: Any) -> Any:
    r = await api.request("GET", url, who, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_timeline_counts_runs_per_bucket_by_outcome(chart_api: Api) -> None:
    api = chart_api
    exp = await api.experiment("alice")
    await add_run(api, exp["id"], "2026-01-01T00:10:00Z", drift=True)
    await add_run(api, exp["id"], "2026-01-01T00:20:00Z")
    await add_run(api, exp["id"], "2026-01-01T00:59:59Z")
    await add_run(api, exp["id"], "2026-01-01T01:30:00Z", "Failed")
    await add_run(api, exp["id"], "2026-01-01T01:40:00Z", "Running")
    await add_run(api, exp["id"], "2026-01-01T03:00:00Z", drift=True, model="m2")
    await add_run(api, exp["id"], "2026-01-02T00:00:00Z", drift=True)  # `to` is exclusive
    await add_run(api, exp["id"], "2025-12-31T23:59:59Z")  # before `from`

    data = await get(api, charts(exp, "timeline"), **DAY)
    assert data["window"] == {
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-02T00:00:00+00:00",
        "unit": "hour",
        "bin_size": 1,
    }
    assert data["buckets"] == [
        {
            "start": "2026-01-01T00:00:00+00:00",
            "drifted": 1,
            "not_drifted": 2,
            "failed": 0,
            "running": 0,
        },
        {
            "start": "2026-01-01T01:00:00+00:00",
            "drifted": 0,
            "not_drifted": 0,
            "failed": 1,
            "running": 1,
        },
        {
            "start": "2026-01-01T03:00:00+00:00",
            "drifted": 1,
            "not_drifted": 0,
            "failed": 0,
            "running": 0,
        },
    ]
    m2 = await get(api, charts(exp, "timeline"), **DAY, model="m2")
    assert [(b["start"], b["drifted"]) for b in m2["buckets"]] == [("2026-01-01T03:00:00+00:00", 1)]

    r = await api.request("GET", charts(exp, "timeline"), "alice", params={**DAY, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["start", "drifted", "not_drifted", "failed", "running"]
    assert rows[1:] == [
        ["2026-01-01T00:00:00+00:00", "1", "2", "0", "0"],
        ["2026-01-01T01:00:00+00:00", "0", "0", "1", "1"],
        ["2026-01-01T03:00:00+00:00", "1", "0", "0", "0"],
    ]


async def test_buckets_stay_within_the_limit_and_align_like_mongodb(chart_api: Api) -> None:
    api = chart_api
    exp = await api.experiment("alice")
    # One run a day for 30 days, at 13:00.
    for day in range(1, 31):
        await add_run(api, exp["id"], f"2026-04-{day:02d}T13:00:00Z", drift=day % 2 == 0)
    params: dict[str, Any] = {
        "from": "2026-04-01T00:00:00Z",
        "to": "2026-05-01T00:00:00Z",
        "buckets": 6,
    }
    data = await get(api, charts(exp, "timeline"), **params)
    assert (data["window"]["unit"], data["window"]["bin_size"]) == ("day", 7)
    assert len(data["buckets"]) <= 6
    # $dateTrunc counts 7-day bins from 2000-01-01 (a Saturday): bins start on Saturdays.
    starts = [b["start"] for b in data["buckets"]]
    assert starts == [
        "2026-03-28T00:00:00+00:00",
        "2026-04-04T00:00:00+00:00",
        "2026-04-11T00:00:00+00:00",
        "2026-04-18T00:00:00+00:00",
        "2026-04-25T00:00:00+00:00",
    ]
    totals = [b["drifted"] + b["not_drifted"] for b in data["buckets"]]
    assert totals == [3, 7, 7, 7, 6]
    assert sum(b["drifted"] for b in data["buckets"]) == 15


async def test_feature_history_per_bucket(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T00:10:00Z",
        [feature("a", p=0.2), feature("b", distance=0.05, threshold=0.1, test="wasserstein")],
    )
    await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T00:40:00Z",
        [
            feature("a", p=0.01, drifted=True),
            feature("b", distance=0.3, threshold=0.1, drifted=True),
        ],
    )
    await add_check(api, db, exp["id"], "2026-01-01T05:00:00Z", [feature("a", p=0.5)])
    await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T05:30:00Z",
        [feature("a", p=0.001, drifted=True)],
        model="m2",
    )

    a = await get(api, charts(exp, "features/a"), **DAY)
    assert a["feature"] == "a"
    assert a["buckets"] == [
        {
            "start": "2026-01-01T00:00:00+00:00",
            "runs": 2,
            "drifted": 1,
            "p_value_min": 0.01,
            "p_value_adjusted_min": 0.02,
            "distance_max": None,
            "threshold": 0.05,
        },
        {
            "start": "2026-01-01T05:00:00+00:00",
            "runs": 2,
            "drifted": 1,
            "p_value_min": 0.001,
            "p_value_adjusted_min": 0.002,
            "distance_max": None,
            "threshold": 0.05,
        },
    ]
    only_m1 = await get(api, charts(exp, "features/a"), **DAY, model="m1")
    assert [(b["runs"], b["p_value_min"]) for b in only_m1["buckets"]] == [(2, 0.01), (1, 0.5)]
    b = await get(api, charts(exp, "features/b"), **DAY)
    assert [
        (b_["runs"], b_["drifted"], b_["distance_max"], b_["p_value_min"]) for b_ in b["buckets"]
    ] == [(2, 1, 0.3, None)]
    assert (await get(api, charts(exp, "features/nope"), **DAY))["buckets"] == []


async def test_feature_names_with_slashes_and_formula_characters(
    chart_api: Api, chart_db: Database
) -> None:
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    await add_check(api, db, exp["id"], "2026-01-01T00:10:00Z", [feature("=price/unit", p=0.3)])
    url = charts(exp, "features/=price/unit")
    data = await get(api, url, **DAY)
    assert [b["runs"] for b in data["buckets"]] == [1]
    r = await api.request("GET", url, "alice", params={**DAY, "format": "csv"})
    rows = list(csv.reader(io.StringIO(r.text)))
    # A spreadsheet must not run the name as a formula.
    assert rows[1][0] == "'=price/unit"


async def test_heatmap_last_runs_by_top_features(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    first = await add_check(
        api, db, exp["id"], "2026-01-01T00:00:00Z", [feature("a", p=0.01, drifted=True)]
    )
    second = await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T01:00:00Z",
        [
            feature("a", p=0.02, drifted=True),
            feature("b", p=0.03, drifted=True),
            feature("c", p=0.9),
            feature("d", p=0.8),
        ],
    )
    third = await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T02:00:00Z",
        [
            feature("b", p=0.001, drifted=True),
            feature("c", p=0.5),
            feature("d", distance=0.4, threshold=0.1, drifted=True, test="psi"),
        ],
    )
    data = await get(api, charts(exp, "heatmap"), runs=2, features=2)
    assert [run["run_id"] for run in data["runs"]] == [third["_id"], second["_id"]]
    assert [run["dataset_drift"] for run in data["runs"]] == [True, True]
    # Over the last 2 runs: b drifted twice, a and d once each (a before d by name).
    assert data["features"] == [
        {"feature": "b", "drifted_runs": 2},
        {"feature": "a", "drifted_runs": 1},
    ]
    cells = [(c["run_id"], c["feature"], c["p_value"], c["drifted"]) for c in data["cells"]]
    assert cells == [
        (third["_id"], "b", 0.001, True),
        (second["_id"], "b", 0.03, True),
        (second["_id"], "a", 0.02, True),
    ]
    assert first["_id"] not in {c["run_id"] for c in data["cells"]}
    everything = await get(api, charts(exp, "heatmap"))
    assert len(everything["runs"]) == 3
    assert [f["feature"] for f in everything["features"]] == ["a", "b", "d", "c"]
    d = next(c for c in everything["cells"] if c["feature"] == "d" and c["run_id"] == third["_id"])
    assert (d["test"], d["distance"], d["p_value"]) == ("psi", 0.4, None)

    r = await api.request("GET", charts(exp, "heatmap"), "alice", params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["run_id", "created_at", "model", "feature"]
    assert len(rows) == 1 + len(everything["cells"])


async def test_violations_per_bucket_and_kind(chart_api: Api, chart_db: Database) -> None:
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    await add_check(
        api,
        db,
        exp["id"],
        "2026-01-01T00:10:00Z",
        [feature("a", p=0.5)],
        ["data_type_check", "completeness_check", "completeness_check"],
    )
    await add_check(api, db, exp["id"], "2026-01-01T00:20:00Z", [feature("a", p=0.5)])
    await add_check(
        api, db, exp["id"], "2026-01-01T02:00:00Z", [feature("a", p=0.5)], ["baseline_drift_check"]
    )
    data = await get(api, charts(exp, "violations"), **DAY)
    assert data["kinds"] == ["baseline_drift_check", "completeness_check", "data_type_check"]
    assert data["buckets"] == [
        {
            "start": "2026-01-01T00:00:00+00:00",
            "checks": 2,
            "total": 3,
            "kinds": {"completeness_check": 2, "data_type_check": 1},
        },
        {
            "start": "2026-01-01T02:00:00+00:00",
            "checks": 1,
            "total": 1,
            "kinds": {"baseline_drift_check": 1},
        },
    ]
    r = await api.request(
        "GET", charts(exp, "violations"), "alice", params={**DAY, "format": "csv"}
    )
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows == [
        ["start", "checks", "total", *data["kinds"]],
        ["2026-01-01T00:00:00+00:00", "2", "3", "0", "2", "1"],
        ["2026-01-01T02:00:00+00:00", "1", "1", "1", "0", "0"],
    ]


@pytest.mark.parametrize("route", ["timeline", "features/a", "heatmap", "violations"])
async def test_private_experiment_is_invisible_to_others(chart_api: Api, route: str) -> None:
    api = chart_api
    private = await api.experiment("alice")
    for who in ("bob", None):
        r = await api.request("GET", charts(private, route), who)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"
    public = await api.experiment("alice", public=True)
    for who in ("bob", None):
        r = await api.request("GET", charts(public, route), who)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("timeline", {"buckets": 1001}, "buckets"),
        ("timeline", {"buckets": 1}, "buckets"),
        ("timeline", {"buckets": "many"}, "buckets"),
        ("features/a", {"from": "yesterday"}, "from"),
        ("timeline", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ("violations", {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "from"),
        ("timeline", {"from": "0001-01-01T00:00:00Z"}, "from"),
        ("features/a", {"to": "9999-12-31T00:00:00+05:00"}, "to"),
        ("timeline", {"format": "xml"}, "format"),
        ("heatmap", {"runs": 201}, "runs"),
        ("heatmap", {"runs": 0}, "runs"),
        ("heatmap", {"features": 101}, "features"),
        ("timeline", {"model": ""}, "model"),
    ],
)
async def test_bad_parameters_are_422_in_the_error_shape(
    chart_api: Api, route: str, params: dict[str, Any], field: str
) -> None:
    api = chart_api
    exp = await api.experiment("alice")
    r = await api.request("GET", charts(exp, route), "alice", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    assert body["status"] == 422
    assert any(error["field"].endswith(field) for error in body["errors"]), body


@pytest.mark.parametrize("model", [None, "m1"])
async def test_window_is_from_inclusive_to_exclusive(
    chart_api: Api, chart_db: Database, model: str | None
) -> None:
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    for when in ("2026-01-01T00:00:00Z", "2026-01-01T23:59:59.999Z", "2026-01-02T00:00:00Z"):
        await add_check(api, db, exp["id"], when, [feature("a", p=0.5)], ["data_type_check"])
    params = {**DAY, **({"model": model} if model else {})}
    timeline = await get(api, charts(exp, "timeline"), **params)
    assert sum(b["not_drifted"] for b in timeline["buckets"]) == 2
    history = await get(api, charts(exp, "features/a"), **params)
    assert sum(b["runs"] for b in history["buckets"]) == 2
    violations = await get(api, charts(exp, "violations"), **params)
    assert sum(b["checks"] for b in violations["buckets"]) == 2
    assert [b["start"] for b in violations["buckets"]] == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T23:00:00+00:00",
    ]


@pytest.mark.parametrize("runs", [1, 2, 3, 4])
async def test_heatmap_finds_the_last_runs_however_far_back(
    chart_api: Api, chart_db: Database, runs: int
) -> None:
    # The last runs are looked for in widening spans (a day, a week, ...): the newest are
    # the newest whichever span holds them.
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    now = datetime.now(UTC)
    made = []
    for age in (timedelta(hours=2), timedelta(days=3), timedelta(days=20), timedelta(days=900)):
        when = (now - age).isoformat()
        made.append(await add_check(api, db, exp["id"], when, [feature("a", p=0.5)]))
    data = await get(api, charts(exp, "heatmap"), runs=runs)
    assert [run["run_id"] for run in data["runs"]] == [doc["_id"] for doc in made[:runs]]


async def test_a_retry_after_a_partial_write_completes_it(
    chart_api: Api, chart_db: Database
) -> None:
    # An attempt that stopped half-way through writing left some results behind (stale ones
    # here); the retry's write leaves exactly one current document per feature.
    api, db = chart_api, chart_db
    exp = await api.experiment("alice")
    run = await add_check(api, db, exp["id"], "2026-01-01T00:10:00Z", [feature("a", p=0.5)])
    partial = chart_store.feature_documents(run, report([feature("a", p=0.9), feature("b", p=0.9)]))
    await db.feature_results.replace_one({"_id": partial[1]["_id"]}, partial[1], upsert=True)
    final = report([feature("a", p=0.2), feature("b", p=0.3, drifted=True), feature("c", p=0.4)])
    await chart_store.record_check(db, run, final)
    await chart_store.record_check(db, run, final)
    stored = {
        d["feature"]: d["p_value"] async for d in db.feature_results.find({"run_id": run["_id"]})
    }
    assert stored == {"a": 0.2, "b": 0.3, "c": 0.4}
    summary = await db.check_runs.find_one({"_id": run["_id"]})
    assert summary is not None
    assert summary["dataset_drift"] is True
