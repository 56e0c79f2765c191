"""Baselines and checks through the API, with the embedded worker doing the statistics."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream

from tests.conftest import Api

ARROW = ARROW_STREAM


def frame(
    seed: int, n: int, shift: float = 0.0, p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x": (rng.normal(shift, 1.0, n)).tolist(),
        "y": rng.exponential(2.0, n).tolist(),
        "c": rng.choice(["a", "b", "c"], size=n, p=list(p)).tolist(),
    }


def arrow_bytes(columns: dict[str, Any]) -> bytes:
    return arrow_stream(pa.table(columns))


@pytest.fixture
async def checked(worker_api: Api) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    api = worker_api
    exp = await api.experiment("alice")
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        params={"name": "train", "model": "m1"},
        json={"columns": frame(1, 3000)},
    )
    assert r.status_code == 201, r.text
    return api, exp, r.json()


async def test_baseline_upload_profiles_every_feature(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    _, _, baseline = checked
    assert baseline["row_count"] == 3000
    kinds = {f["name"]: f["kind"] for f in baseline["features"]}
    assert kinds == {"x": "numerical", "y": "numerical", "c": "categorical"}


async def test_check_finds_injected_drift_and_only_there(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, baseline = checked
    patch = await api.request(
        "PATCH",
        f"/api/v1/experiment/{exp['id']}",
        "alice",
        json={"drift_config": {"drift_share": 0.3}},
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["drift_config"]["drift_share"] == 0.3
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        content=arrow_bytes(frame(2, 2000, shift=0.6)),
        headers={"content-type": ARROW},
    )
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["job_status"] == "Completed"
    assert run["drift_detected"] is True  # 1 of 3 features >= the configured share 0.3
    assert run["parameters"]["check"]["drifted_features"] == ["x"]
    assert run["parameters"]["check"]["baseline_id"] == baseline["id"]
    report = (
        await api.request(
            "GET", f"/api/v1/experiment/{exp['id']}/drift/{run['id']}/report", "alice"
        )
    ).json()
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["x"]["drifted"] is True
    assert by_name["y"]["drifted"] is False
    assert by_name["c"]["drifted"] is False
    assert report["correction"] == "bh"
    # 3,000 reference rows: the automatic choice is the normed Wasserstein distance (> 1,000).
    assert by_name["x"]["test"] == "wasserstein"
    assert by_name["x"]["distance"] >= by_name["x"]["threshold"] == 0.1
    assert by_name["c"]["test"] == "jensen_shannon"
    hist = by_name["x"]["histogram"]
    assert len(hist["reference"]) == len(hist["current"]) == len(hist["edges"]) + 1
    assert sum(hist["current"]) == 2000


async def test_check_without_drift_is_clean(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    data = pa_csv.write_csv  # CSV upload path too
    table = pa.table(frame(3, 1500))
    sink = io.BytesIO()
    data(table, sink)
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        content=sink.getvalue(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["drift_detected"] is False
    assert r.json()["parameters"]["check"]["drifted_features"] == []


async def test_check_answers_202_at_once_and_finishes_later(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1"},
        json={"columns": {**frame(4, 500, shift=1.0), "y": frame(9, 500, shift=1.0)["x"]}},
    )
    assert r.status_code == 202, r.text
    assert r.json()["job_status"] == "Running"
    url = f"/api/v1/experiment/{exp['id']}/drift/{r.json()['id']}"
    for _ in range(300):
        run = (await api.request("GET", url, "alice")).json()
        if run["job_status"] != "Running":
            break

        await asyncio.sleep(0.1)
    assert run["job_status"] == "Completed"
    assert run["parameters"]["check"]["drifted_features"] == ["x", "y"]
    assert run["drift_detected"] is True  # 2 of 3 features >= the default share 0.5


async def test_untestable_features_are_reported_not_crashed(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    columns = frame(5, 800)
    del columns["y"]
    columns["x"] = [None] * 800
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        json={"columns": columns},
    )
    assert r.status_code == 200, r.text
    assert r.json()["job_status"] == "Completed"
    report = (
        await api.request(
            "GET", f"/api/v1/experiment/{exp['id']}/drift/{r.json()['id']}/report", "alice"
        )
    ).json()
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["y"]["untestable"]
    assert by_name["x"]["untestable"]
    assert by_name["c"]["test"] is not None
    assert report["n_tested"] == 1


async def test_check_permissions_and_input_errors(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    url = f"/api/v1/experiment/{exp['id']}/check"
    body = {"columns": frame(6, 100)}
    assert (
        await api.request("POST", url, None, params={"model": "m1"}, json=body)
    ).status_code == 404
    await api.register("bob")
    assert (
        await api.request("POST", url, "bob", params={"model": "m1"}, json=body)
    ).status_code == 404
    bad = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1"},
        content=b"not,a\ncsv",
        headers={"content-type": "text/plain"},
    )
    assert bad.status_code == 415
    assert bad.json()["code"] == "unsupported_media_type"
    broken = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1"},
        content=b"\x00\x01garbage",
        headers={"content-type": ARROW},
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"]
    no_model = await api.request("POST", url, "alice", json=body)
    assert no_model.status_code == 422
    runs = await api.request(
        "POST", f"/api/v1/experiment/{exp['id']}/drift/search", "alice", json={}
    )
    assert runs.json() == []  # nothing was written for the refused requests


async def test_small_reference_uses_corrected_p_values(worker_api: Api) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request("POST", f"{base}/baseline", "alice", json={"columns": frame(11, 800)})
    assert r.status_code == 201
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m", "wait": 60},
        json={"columns": frame(12, 800, shift=0.4)},
    )
    assert r.status_code == 200, r.text
    report = (await api.request("GET", f"{base}/drift/{r.json()['id']}/report", "alice")).json()
    by_name = {f["feature"]: f for f in report["features"]}
    assert by_name["x"]["test"] == "ks"
    assert by_name["c"]["test"] == "chi_square"
    for feature in report["features"]:
        assert feature["p_value_adjusted"] >= feature["p_value"]
    assert by_name["x"]["drifted"] is True
    assert by_name["x"]["p_value_adjusted"] < 0.05


async def test_check_without_any_baseline_is_422(api_factory: Any) -> None:
    api: Api = await api_factory()
    await api.register("alice")
    exp = await api.experiment("alice")
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1"},
        json={"columns": frame(7, 50)},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "baseline"


async def test_upload_limits_name_the_limit(api_factory: Any) -> None:
    api: Api = await api_factory(max_batch_rows=100, max_upload_bytes=200_000)
    await api.register("alice")
    exp = await api.experiment("alice")
    url = f"/api/v1/experiment/{exp['id']}/baseline"
    rows = await api.request("POST", url, "alice", json={"columns": frame(8, 101)})
    assert rows.status_code == 413
    assert rows.json()["errors"][0]["field"] == "max_rows"
    big = await api.request(
        "POST", url, "alice", content=b"x" * 300_000, headers={"content-type": "text/csv"}
    )
    assert big.status_code == 413


SUMMARY = "application/vnd.drift-monitor.summary+json"


async def _run_check(api: Api, exp: dict[str, Any], content: bytes, media: str) -> dict[str, Any]:
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        content=content,
        headers={"content-type": media},
    )
    assert r.status_code == 200, r.text
    report = await api.request("GET", f"{base}/drift/{r.json()['id']}/report", "alice")
    return dict(report.json())


@pytest.mark.parametrize(
    ("numerical", "categorical"),
    [
        ("jensen_shannon", "jensen_shannon"),
        ("psi", "chi_square"),
        ("t_test", "tvd"),
        ("linf_robust", "g_test"),
    ],
)
async def test_summary_mode_decides_like_raw_mode(
    checked: tuple[Api, dict[str, Any], dict[str, Any]], numerical: str, categorical: str
) -> None:
    from drift_backend.baselines.model import Bins
    from drift_backend.baselines.summary import summarize

    api, exp, baseline = checked
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request(
        "PATCH",
        base,
        "alice",
        json={"drift_config": {"numerical_test": numerical, "categorical_test": categorical}},
    )
    assert r.status_code == 200, r.text
    current = frame(21, 2500, shift=0.25, p=(0.4, 0.35, 0.25))
    bins = Bins.model_validate(
        (await api.request("GET", f"{base}/baseline/{baseline['id']}/bins", "alice")).json()
    )
    summary = summarize(pa.table(current), bins)
    raw = await _run_check(api, exp, arrow_bytes(current), ARROW)
    counted = await _run_check(api, exp, summary.model_dump_json().encode(), SUMMARY)
    assert raw["mode"] == "raw"
    assert counted["mode"] == "summary"
    assert counted["drifted_features"] == raw["drifted_features"]
    assert counted["dataset_drift"] == raw["dataset_drift"]
    for a, b in zip(raw["features"], counted["features"], strict=True):
        assert a["test"] == b["test"]
        assert a["drifted"] == b["drifted"]
        for key in ("statistic", "p_value", "distance"):
            if a[key] is None:
                assert b[key] is None
            else:
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-12)
        assert a["histogram"] == b["histogram"]
    assert counted["violations"] == raw["violations"]


async def test_summary_mode_explains_raw_only_tests(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    from drift_backend.baselines.model import Bins
    from drift_backend.baselines.summary import summarize

    api, exp, baseline = checked
    base = f"/api/v1/experiment/{exp['id']}"
    await api.request("PATCH", base, "alice", json={"drift_config": {"numerical_test": "ks"}})
    bins = Bins.model_validate(
        (await api.request("GET", f"{base}/baseline/{baseline['id']}/bins", "alice")).json()
    )
    summary = summarize(pa.table(frame(22, 500)), bins)
    report = await _run_check(api, exp, summary.model_dump_json().encode(), SUMMARY)
    by_name = {f["feature"]: f for f in report["features"]}
    assert "needs raw values" in by_name["x"]["untestable"]
    assert by_name["c"]["test"] is not None


async def test_summary_that_does_not_fit_the_bins_is_422(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    bad = {"row_count": 10, "features": [{"name": "x", "count": 10, "counts": [1, 2, 3]}]}
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1"},
        json=bad,
        headers={"content-type": SUMMARY},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "features.x.counts"
    unknown = {"row_count": 1, "features": [{"name": "nope", "count": 1}]}
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1"},
        json=unknown,
        headers={"content-type": SUMMARY},
    )
    assert r.status_code == 422


async def test_bad_batch_yields_violations(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    current = frame(23, 400)
    current["y"] = [-5.0, *current["y"][1:]]  # y was never negative: Negative / Bound
    current["c"] = ["zzz"] * 50 + current["c"][50:]  # an unseen category
    del current["x"]  # a missing column
    current["extra"] = [1] * 400
    report = await _run_check(api, exp, arrow_bytes(current), ARROW)
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in report["violations"]}
    assert ("x", "missing_column_check") in kinds
    assert ("extra", "extra_column_check") in kinds
    assert ("c", "categorical_values_check") in kinds
    assert any(f == "y" and kind in {"bound_check", "non_negative_check"} for f, kind in kinds)


async def test_deleting_an_experiment_removes_everything_under_it(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    from drift_backend.store.database import connect

    api, exp, _ = checked
    base = f"/api/v1/experiment/{exp['id']}"
    finished = await _run_check(api, exp, arrow_bytes(frame(31, 300)), ARROW)
    assert finished["features"]
    finished_id = (await api.request("POST", f"{base}/drift/search", "alice", json={})).json()[0][
        "id"
    ]
    queued = await api.request(
        "POST", f"{base}/check", "alice", params={"model": "m1"}, json={"columns": frame(32, 300)}
    )
    assert queued.status_code == 202
    assert (await api.request("DELETE", base, "alice")).status_code == 204
    client = connect(api.settings.mongodb_url.get_secret_value())
    db = client[api.settings.mongodb_database]
    runs = [finished_id, queued.json()["id"]]
    profiles = {"metadata.experiment_id": exp["id"]}

    async def left() -> dict[str, int]:
        """What is left of the experiment; a job the worker held when it was deleted may
        still finish against its deleted run, and must clean up after itself then."""
        return {
            "drifts": await db.drifts.count_documents({"experiment_id": exp["id"]}),
            "baselines": await db.baselines.count_documents({"experiment_id": exp["id"]}),
            "reports": await db.reports.count_documents({"_id": {"$in": runs}}),
            "jobs": await db.jobs.count_documents(
                {"drift_id": {"$in": runs}, "status": {"$in": ["queued", "running"]}}
            ),
            "batches": await db["batches.files"].count_documents(
                {"metadata.experiment_id": exp["id"]}
            ),
            "profiles": await db["baseline_profiles.files"].count_documents(profiles),
        }

    try:
        remaining = await left()
        for _ in range(300):  # a hang guard of 30 s: settles within a job's run time
            if not any(remaining.values()):
                break
            await asyncio.sleep(0.1)
            remaining = await left()
        assert remaining == dict.fromkeys(remaining, 0)
    finally:
        await client.close()


async def test_config_can_be_overridden_per_check(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    import json

    api, exp, _ = checked
    url = f"/api/v1/experiment/{exp['id']}/check"
    override = json.dumps({"correction": "bonferroni", "features": {"x": {"test": "psi"}}})
    r = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1", "wait": 60, "config": override},
        json={"columns": frame(51, 500)},
    )
    assert r.status_code == 200, r.text
    report = (
        await api.request(
            "GET", f"/api/v1/experiment/{exp['id']}/drift/{r.json()['id']}/report", "alice"
        )
    ).json()
    assert report["correction"] == "bonferroni"
    assert {f["feature"]: f["test"] for f in report["features"]}["x"] == "psi"
    stored = (await api.request("GET", f"/api/v1/experiment/{exp['id']}", "alice")).json()
    assert stored["drift_config"]["correction"] == "bh"  # the experiment keeps its own
    bad = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1", "config": '{"correction": "magic"}'},
        json={"columns": frame(52, 50)},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "config.correction"


async def test_check_run_fields_follow_the_drift_rules(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    api, exp, _ = checked
    url = f"/api/v1/experiment/{exp['id']}/check"
    r = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1", "tags": ["x" * 65]},
        json={"columns": frame(61, 50)},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "tags"
    r = await api.request(
        "POST",
        url,
        "alice",
        params={"model": "m1", "tags": ["a", "b", "a"]},
        json={"columns": frame(62, 50)},
    )
    assert r.status_code == 202
    assert r.json()["tags"] == ["a", "b"]


async def test_rows_are_stored_only_when_a_test_needs_them(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],
) -> None:
    import json

    from drift_backend.store.database import connect

    api, exp, _ = checked
    url = f"/api/v1/experiment/{exp['id']}/check"
    reduced = await api.request(
        "POST", url, "alice", params={"model": "m1", "wait": 60}, json={"columns": frame(71, 400)}
    )
    whole = await api.request(
        "POST",
        url,
        "alice",
        params={
            "model": "m1",
            "wait": 60,
            "config": json.dumps({"numerical_test": "mann_whitney"}),
        },
        json={"columns": frame(72, 400, shift=0.5)},
    )
    assert reduced.status_code == whole.status_code == 200
    client = connect(api.settings.mongodb_url.get_secret_value())
    db = client[api.settings.mongodb_database]
    try:
        modes = {
            job["drift_id"]: job["payload"]["mode"]
            async for job in db.jobs.find(
                {"drift_id": {"$in": [reduced.json()["id"], whole.json()["id"]]}}
            )
        }
    finally:
        await client.close()
    assert modes == {reduced.json()["id"]: "reduced", whole.json()["id"]: "raw"}
    # The finished runs still say how their batch was kept.
    assert reduced.json()["parameters"]["check"]["mode"] == "reduced"
    assert whole.json()["parameters"]["check"]["mode"] == "raw"
    report = (
        await api.request(
            "GET", f"/api/v1/experiment/{exp['id']}/drift/{whole.json()['id']}/report", "alice"
        )
    ).json()
    x = next(f for f in report["features"] if f["feature"] == "x")
    assert x["test"] == "mann_whitney"
    assert x["drifted"] is True


async def test_wait_is_capped_by_the_server(api_factory: Any) -> None:
    # No worker: the run stays Running, so the request answers when the cap runs out.
    api: Api = await api_factory(max_check_wait_seconds=0.5)
    await api.register("alice")
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request("POST", f"{base}/baseline", "alice", json={"columns": frame(81, 200)})
    assert r.status_code == 201
    # Uncapped, the request would hold for the hour asked, and under the default cap for
    # 60 s: the guard, shorter than both and far above 0.5 s, turns either into a failure.
    r = await asyncio.wait_for(
        api.request(
            "POST",
            f"{base}/check",
            "alice",
            params={"model": "m1", "wait": 3600},
            json={"columns": frame(82, 100)},
        ),
        timeout=30,
    )
    assert r.status_code == 202
    assert r.json()["job_status"] == "Running"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_uploads_with_or_without_a_content_length(worker_api: Api, framing: str) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    body = arrow_bytes(frame(5, 2000))

    async def chunks() -> Any:
        for start in range(0, len(body), 7001):
            yield body[start : start + 7001]

    content: Any = body if framing == "content-length" else chunks()
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        content=content,
        headers={"content-type": ARROW},
    )
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == 2000


@pytest.mark.parametrize("keep", [False, True], ids=["dropped", "kept"])
async def test_batches_last_until_their_job_ends_unless_kept(api_factory: Any, keep: bool) -> None:
    from drift_backend.store.database import connect

    api: Api = await api_factory(embedded_worker=True, keep_batches=keep)
    await api.register("alice")
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    r = await api.request("POST", f"{base}/baseline", "alice", json={"columns": frame(91, 500)})
    assert r.status_code == 201, r.text
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        json={"columns": frame(92, 500)},
    )
    assert r.json()["job_status"] == "Completed", r.text
    client = connect(api.settings.mongodb_url.get_secret_value())
    db = client[api.settings.mongodb_database]
    try:
        # The run finishes before the job does: wait for the job's end (a hang guard).
        for _ in range(600):
            job = await db.jobs.find_one({"drift_id": r.json()["id"]})
            if job is not None and job["status"] == "done":
                break
            await asyncio.sleep(0.1)
        stored = await db["batches.files"].count_documents({"metadata.experiment_id": exp["id"]})
    finally:
        await client.close()
    assert job is not None
    assert job["status"] == "done"
    assert stored == (1 if keep else 0)


@pytest.mark.parametrize("features", [None, [1], "x0"])
async def test_config_features_that_are_not_an_object_are_422(
    checked: tuple[Api, dict[str, Any], dict[str, Any]], features: Any
) -> None:
    import json

    api, exp, _ = checked
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "config": json.dumps({"features": features})},
        json={"columns": frame(95, 100)},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "config.features"
