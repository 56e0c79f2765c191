"""Error paths of the baseline and check endpoints: body limits, batch limits, baseline
choice, summary-mode and per-check config errors, and reports of runs without one.

No worker runs here: a check answers 202 and its run already names the baseline it uses."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tests.checks.test_check_api import ARROW, arrow_bytes, frame
from tests.conftest import Api

SUMMARY = "application/vnd.drift-monitor.summary+json"


def _error(response: Any, status: int) -> dict[str, Any]:
    """The error body, after checking the status and the shared error shape."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["status"] == status
    assert isinstance(body["code"], str)
    assert isinstance(body["message"], str)
    return body


def _field(response: Any, status: int) -> str:
    body = _error(response, status)
    assert body["errors"], body
    return str(body["errors"][0]["field"])


async def _chunks(body: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _setup(api: Api) -> tuple[dict[str, Any], str]:
    await api.register("alice")
    exp = await api.experiment("alice")
    return exp, f"/api/v1/experiment/{exp['id']}"


async def _baseline(api: Api, base: str, seed: int, n: int, **params: Any) -> dict[str, Any]:
    r = await api.request(
        "POST", f"{base}/baseline", "alice", params=params, json={"columns": frame(seed, n)}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


# 1. Uploads get the larger upload limit; every other body the general one.


@pytest.mark.parametrize("media", ["arrow", "json"])
async def test_uploads_get_the_upload_limit_not_the_body_limit(
    api_factory: Any, media: str
) -> None:
    api: Api = await api_factory(max_body_bytes=2_000, max_upload_bytes=500_000)
    _, base = await _setup(api)
    if media == "arrow":
        content = arrow_bytes(frame(1, 2400))
        headers = {"content-type": ARROW}
    else:
        content = json.dumps({"columns": frame(1, 1100)}).encode()
        headers = {"content-type": "application/json"}
    assert 45_000 < len(content) < 60_000  # ~50 KB: 25 times the body limit
    r = await api.request("POST", f"{base}/baseline", "alice", content=content, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["row_count"] == (2400 if media == "arrow" else 1100)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_other_bodies_keep_the_body_limit(api_factory: Any, framing: str) -> None:
    api: Api = await api_factory(max_body_bytes=2_000, max_upload_bytes=500_000)
    _, base = await _setup(api)
    body = json.dumps({"model": "m1", "parameters": {"pad": "x" * 3_000}}).encode()
    assert len(body) > 2_000
    content: Any = body if framing == "content-length" else _chunks(body, 500)
    r = await api.request(
        "POST",
        f"{base}/drift",
        "alice",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert _field(r, 413) == "max_body_bytes"
    assert r.json()["code"] == "payload_too_large"
    runs = await api.request("POST", f"{base}/drift/search", "alice", json={})
    assert runs.json() == []


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_upload_past_the_upload_limit_is_413(api_factory: Any, framing: str) -> None:
    api: Api = await api_factory(max_body_bytes=2_000, max_upload_bytes=500_000)
    _, base = await _setup(api)
    body = arrow_bytes(frame(2, 28_000))
    assert 550_000 < len(body) < 650_000  # ~600 KB
    content: Any = body if framing == "content-length" else _chunks(body)
    r = await api.request(
        "POST", f"{base}/baseline", "alice", content=content, headers={"content-type": ARROW}
    )
    assert _field(r, 413) == "max_bytes"
    assert r.json()["code"] == "payload_too_large"
    assert (await api.request("GET", f"{base}/baseline", "alice")).json() == []


async def test_summary_body_has_its_own_cap(api_factory: Any) -> None:
    # Summary mode caps its body at 16 x max_body_bytes (32 KB here), below the upload limit.
    api: Api = await api_factory(max_body_bytes=2_000, max_upload_bytes=500_000)
    _, base = await _setup(api)
    await _baseline(api, base, 3, 200, model="m1")
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1"},
        content=b" " * 40_000,
        headers={"content-type": SUMMARY},
    )
    assert _field(r, 413) == "max_bytes"


# 2. max_batch_columns through the API.


def _encoded(columns: dict[str, Any], media: str) -> tuple[bytes, str]:
    table = pa.table(columns)
    sink = io.BytesIO()
    if media == "csv":
        pa_csv.write_csv(table, sink)
        return sink.getvalue(), "text/csv"
    if media == "parquet":
        pq.write_table(table, sink)
        return sink.getvalue(), "application/vnd.apache.parquet"
    if media == "arrow":
        return arrow_bytes(columns), ARROW
    return json.dumps({"columns": columns}).encode(), "application/json"


@pytest.mark.parametrize("media", ["json", "arrow", "csv", "parquet"])
async def test_too_many_columns_is_413_max_columns(api_factory: Any, media: str) -> None:
    api: Api = await api_factory(max_batch_columns=2)
    _, base = await _setup(api)
    content, content_type = _encoded(frame(4, 50), media)  # x, y, c: three columns
    r = await api.request(
        "POST",
        f"{base}/baseline",
        "alice",
        content=content,
        headers={"content-type": content_type},
    )
    assert _field(r, 413) == "max_columns"
    two = {k: v for k, v in frame(4, 50).items() if k != "c"}
    content, content_type = _encoded(two, media)
    r = await api.request(
        "POST",
        f"{base}/baseline",
        "alice",
        content=content,
        headers={"content-type": content_type},
    )
    assert r.status_code == 201, r.text


async def test_check_batch_with_too_many_columns_is_413(api_factory: Any) -> None:
    api: Api = await api_factory(max_batch_columns=2)
    _, base = await _setup(api)
    two = {k: v for k, v in frame(5, 100).items() if k != "c"}
    r = await api.request("POST", f"{base}/baseline", "alice", json={"columns": two})
    assert r.status_code == 201, r.text
    r = await api.request(
        "POST", f"{base}/check", "alice", params={"model": "m1"}, json={"columns": frame(6, 50)}
    )
    assert _field(r, 413) == "max_columns"


# 3. Which baseline a check uses.


async def _queued_baseline_id(api: Api, base: str, model: str = "m1") -> str:
    r = await api.request(
        "POST", f"{base}/check", "alice", params={"model": model}, json={"columns": frame(9, 50)}
    )
    assert r.status_code == 202, r.text
    assert r.json()["job_status"] == "Running"
    return str(r.json()["parameters"]["check"]["baseline_id"])


async def test_default_baselines_choose_the_baseline(api: Api) -> None:
    _, base = await _setup(api)
    older = await _baseline(api, base, 10, 100, model="m1", name="older")
    await asyncio.sleep(0.05)  # created_at is stored in milliseconds
    newer = await _baseline(api, base, 11, 100, model="m1", name="newer")
    assert await _queued_baseline_id(api, base) == newer["id"]  # no default: the newest

    r = await api.request(
        "PATCH",
        base,
        "alice",
        json={"default_baselines": [{"model": "m1", "baseline_id": older["id"]}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["default_baselines"] == [{"model": "m1", "baseline_id": older["id"]}]
    assert await _queued_baseline_id(api, base) == older["id"]
    # An explicit baseline still wins over the default.
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "baseline": newer["id"]},
        json={"columns": frame(12, 50)},
    )
    assert r.status_code == 202, r.text
    assert r.json()["parameters"]["check"]["baseline_id"] == newer["id"]

    assert (
        await api.request("DELETE", f"{base}/baseline/{older['id']}", "alice")
    ).status_code == 204
    # Deleting a baseline drops it from the defaults too.
    assert (await api.request("GET", base, "alice")).json()["default_baselines"] == []
    assert await _queued_baseline_id(api, base) == newer["id"]


async def test_default_baseline_must_exist_in_the_experiment(api: Api) -> None:
    _, base = await _setup(api)
    await _baseline(api, base, 13, 100, model="m1")
    r = await api.request(
        "PATCH",
        base,
        "alice",
        json={"default_baselines": [{"model": "m1", "baseline_id": str(uuid.uuid4())}]},
    )
    assert _field(r, 422) == "default_baselines"
    # A baseline of another experiment is not one of this experiment's either.
    other = await api.experiment("alice")
    foreign = await _baseline(api, f"/api/v1/experiment/{other['id']}", 14, 100, model="m1")
    r = await api.request(
        "PATCH",
        base,
        "alice",
        json={"default_baselines": [{"model": "m1", "baseline_id": foreign["id"]}]},
    )
    assert _field(r, 422) == "default_baselines"
    assert (await api.request("GET", base, "alice")).json()["default_baselines"] == []


async def test_unknown_explicit_baseline_is_404(api: Api) -> None:
    _, base = await _setup(api)
    await _baseline(api, base, 15, 100, model="m1")
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "baseline": str(uuid.uuid4())},
        json={"columns": frame(16, 50)},
    )
    assert _error(r, 404)["code"] == "not_found"


# 4. Summary mode.


async def _summary_setup(api: Api) -> tuple[str, dict[str, Any]]:
    _, base = await _setup(api)
    baseline = await _baseline(api, base, 20, 500, model="m1")
    r = await api.request("GET", f"{base}/baseline/{baseline['id']}/bins", "alice")
    assert r.status_code == 200, r.text
    return base, dict(r.json())


def _valid_summary(bins: dict[str, Any]) -> dict[str, Any]:
    features = []
    for feature in bins["features"]:
        counts: dict[str, Any] = {"name": feature["name"], "count": 10}
        if feature["edges"] is not None:
            cells = len(feature["edges"]) + 1
            counts["counts"] = [10.0] + [0.0] * (cells - 1)
        if feature["categories"] is not None:
            counts["category_counts"] = [10.0] + [0.0] * (len(feature["categories"]) - 1)
        features.append(counts)
    return {"row_count": 10, "features": features}


async def _summary_check(api: Api, base: str, content: bytes) -> Any:
    return await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1"},
        content=content,
        headers={"content-type": SUMMARY},
    )


async def test_valid_summary_is_queued(api: Api) -> None:
    base, bins = await _summary_setup(api)
    r = await _summary_check(api, base, json.dumps(_valid_summary(bins)).encode())
    assert r.status_code == 202, r.text
    assert r.json()["parameters"]["check"]["mode"] == "summary"
    assert r.json()["parameters"]["check"]["rows"] == 10


async def test_summary_that_is_not_json_is_422_body(api: Api) -> None:
    base, _ = await _summary_setup(api)
    r = await _summary_check(api, base, b"{not json")
    assert _field(r, 422) == "body"
    assert r.json()["code"] == "validation_error"


async def test_summary_missing_a_required_field_names_it(api: Api) -> None:
    base, bins = await _summary_setup(api)
    summary = _valid_summary(bins)
    del summary["row_count"]
    r = await _summary_check(api, base, json.dumps(summary).encode())
    assert _field(r, 422) == "row_count"


async def test_summary_counts_of_the_wrong_length_name_the_feature(api: Api) -> None:
    base, bins = await _summary_setup(api)
    by_name = {f["name"]: f for f in bins["features"]}
    assert by_name["x"]["edges"]
    summary = _valid_summary(bins)
    x = next(f for f in summary["features"] if f["name"] == "x")
    x["counts"] = x["counts"][:-1]  # len(edges) counts, one short
    r = await _summary_check(api, base, json.dumps(summary).encode())
    assert _field(r, 422) == "features.x.counts"

    summary = _valid_summary(bins)
    c = next(f for f in summary["features"] if f["name"] == "c")
    c["category_counts"] = [*c["category_counts"], 1.0]
    r = await _summary_check(api, base, json.dumps(summary).encode())
    assert _field(r, 422) == "features.c.category_counts"


async def test_summary_with_an_unknown_feature_names_it(api: Api) -> None:
    base, bins = await _summary_setup(api)
    summary = _valid_summary(bins)
    summary["features"].append({"name": "nope", "count": 10})
    r = await _summary_check(api, base, json.dumps(summary).encode())
    assert _field(r, 422) == "features.nope"


async def test_summary_with_a_negative_count_names_the_feature(api: Api) -> None:
    base, bins = await _summary_setup(api)
    summary = _valid_summary(bins)
    y = next(f for f in summary["features"] if f["name"] == "y")
    y["counts"][0] = -1.0
    r = await _summary_check(api, base, json.dumps(summary).encode())
    assert _field(r, 422) == "features.y"
    runs = await api.request("POST", f"{base}/drift/search", "alice", json={})
    assert runs.json() == []  # no run for any refused summary


# 5. Reports exist only for server checks.


@pytest.mark.parametrize("job_status", ["Running", "Completed"])
async def test_report_of_a_client_run_is_404(api: Api, job_status: str) -> None:
    _, base = await _setup(api)
    r = await api.request(
        "POST", f"{base}/drift", "alice", json={"model": "m1", "job_status": job_status}
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    r = await api.request("GET", f"{base}/drift/{run_id}/report", "alice")
    body = _error(r, 404)
    assert body["code"] == "not_found"
    state = "still running" if job_status == "Running" else "not a server check"
    assert state in body["message"]
    # A NotFound carries no per-field errors.
    assert "errors" not in body


async def test_report_of_an_unknown_run_is_404(api: Api) -> None:
    _, base = await _setup(api)
    r = await api.request("GET", f"{base}/drift/{uuid.uuid4()}/report", "alice")
    assert _error(r, 404)["code"] == "not_found"


# 6. Per-check config overrides.


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("not json", "config"),
        ("[1]", "config"),
        ('"text"', "config"),
        ('{"alpha": 2}', "config.alpha"),
        ('{"alpha": 0}', "config.alpha"),
        ('{"drift_share": 0}', "config.drift_share"),
        ('{"no_such_option": 1}', "config.no_such_option"),
        ('{"features": {"x": {"threshold": -1}}}', "config.features.x.threshold"),
    ],
)
async def test_bad_check_config_names_the_field(api: Api, config: str, field: str) -> None:
    _, base = await _setup(api)
    await _baseline(api, base, 30, 100, model="m1")
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "config": config},
        json={"columns": frame(31, 50)},
    )
    assert _field(r, 422) == field
    assert r.json()["code"] == "validation_error"
    runs = await api.request("POST", f"{base}/drift/search", "alice", json={})
    assert runs.json() == []
