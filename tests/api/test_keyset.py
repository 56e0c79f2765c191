"""Keyset pages of runs (``POST .../drift/page``): the same rows, in the same order, as the
drift-watch search route, a page at a time by cursor, both ways, with filters; no count."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.drifts.schemas import SCHEMA_VERSION

from tests.conftest import Api

NOW = datetime.now(UTC).replace(microsecond=0)


def _run(exp_id: str, at: datetime, i: int) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "experiment_id": exp_id,
        "schema_version": SCHEMA_VERSION,
        "created_at": at,
        "updated_at": at,
        "finished_at": at,
        "created_by": None,
        "job_status": "Failed" if i % 5 == 0 else "Completed",
        "model": f"m{i % 2}",
        "tags": ["t"],
        "drift_detected": False,
        "parameters": {},
        "concept_drift": None,
        "data_drift": None,
        "error": None,
    }


@pytest.fixture
async def runs(api: Api, raw_db: Any) -> tuple[str, list[dict[str, Any]]]:
    """An experiment whose 60 runs spread from minutes to years back (sparse and dense
    spans, so pages cross the widening windows), with ties on ``created_at``, and one run
    stamped in the future."""
    await api.register("alice")
    exp_id = str((await api.experiment("alice"))["id"])
    rng = random.Random(7)
    times = [NOW - timedelta(minutes=rng.randint(1, 600)) for _ in range(20)]
    times += [NOW - timedelta(days=rng.randint(1, 2000)) for _ in range(30)]
    times += [NOW - timedelta(hours=3)] * 9  # ties: one timestamp, ordered by id
    times += [NOW + timedelta(minutes=5)]
    docs = [_run(exp_id, at, i) for i, at in enumerate(times)]
    await raw_db(api).drifts.insert_many(docs)
    return exp_id, docs


async def _page(api: Api, exp_id: str, body: Any = None, **params: Any) -> dict[str, Any]:
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/page", "alice", json=body, params=params
    )
    assert r.status_code == 200, r.text
    assert "x-pagination" not in r.headers
    return dict(r.json())


def _expected(docs: list[dict[str, Any]], keep: Any = lambda d: True) -> list[str]:
    chosen = [d for d in docs if keep(d)]
    chosen.sort(key=lambda d: (d["created_at"], d["_id"]), reverse=True)
    return [d["_id"] for d in chosen]


async def _walk(api: Api, exp_id: str, body: Any, limit: int) -> list[dict[str, Any]]:
    pages = [await _page(api, exp_id, body, limit=limit)]
    while pages[-1]["next"] is not None:
        pages.append(await _page(api, exp_id, body, limit=limit, after=pages[-1]["next"]))
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("limit", [1, 7, 25, 100])
async def test_pages_forward_and_back_give_every_run_once_in_order(
    api: Api, runs: tuple[str, list[dict[str, Any]]], limit: int
) -> None:
    exp_id, docs = runs
    pages = await _walk(api, exp_id, None, limit)
    assert [run["id"] for page in pages for run in page["items"]] == _expected(docs)
    assert all(len(page["items"]) == limit for page in pages[:-1])
    assert pages[0]["previous"] is None
    assert all(page["previous"] is not None for page in pages[1:])
    # Back from the last page by ``previous``: each page is the one seen before it.
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        back = await _page(api, exp_id, limit=limit, before=back["previous"])
        assert [r["id"] for r in back["items"]] == [r["id"] for r in expected["items"]]
    assert back["previous"] is None


async def test_the_same_order_as_the_search_route(
    api: Api, runs: tuple[str, list[dict[str, Any]]]
) -> None:
    exp_id, _ = runs
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/search", "alice", json={},
        params={"page_size": 100},
    )  # fmt: skip
    page = await _page(api, exp_id, {}, limit=100)
    assert [run["id"] for run in page["items"]] == [run["id"] for run in r.json()]
    assert page["next"] is None


async def test_filters_apply_across_pages(api: Api, runs: tuple[str, list[dict[str, Any]]]) -> None:
    exp_id, docs = runs
    start, end = NOW - timedelta(days=900), NOW - timedelta(hours=1)
    body = {
        "model": "m1",
        "job_status": "Completed",
        "created_at": {"$gte": start.isoformat(), "$lt": end.isoformat()},
    }

    def keep(d: dict[str, Any]) -> bool:
        return bool(
            d["model"] == "m1" and d["job_status"] == "Completed" and start <= d["created_at"] < end
        )

    pages = await _walk(api, exp_id, body, 3)
    assert [run["id"] for page in pages for run in page["items"]] == _expected(docs, keep)
    # A time condition the windows cannot be merged into (not a range) still pages right.
    tie = NOW - timedelta(hours=3)
    other: dict[str, Any] = {
        "created_at": {"$ne": tie.isoformat()},
        "$or": [{"model": "m0"}, {"job_status": "Failed"}],
    }
    pages = await _walk(api, exp_id, other, 4)
    expected = _expected(
        docs,
        lambda d: d["created_at"] != tie and (d["model"] == "m0" or d["job_status"] == "Failed"),
    )
    assert [run["id"] for page in pages for run in page["items"]] == expected


async def test_empty_experiment(api: Api) -> None:
    await api.register("alice")
    exp_id = str((await api.experiment("alice"))["id"])
    assert await _page(api, exp_id) == {"items": [], "next": None, "previous": None}


BOTH = "MjAyNi0wMS0wMVQwMDowMDowMHxh"  # a well-formed cursor, but with a naive time


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "bm8gYmFy"}, "before"),
        ({"after": BOTH}, "after"),
        ({"after": BOTH, "before": BOTH}, "before"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
    ],
)  # fmt: skip
async def test_bad_parameters_are_422(api: Api, params: dict[str, object], field: str) -> None:
    await api.register("alice")
    exp_id = str((await api.experiment("alice"))["id"])
    r = await api.request(
        "POST", f"/api/v1/experiment/{exp_id}/drift/page", "alice", json={}, params=params
    )
    assert r.status_code == 422, r.text
    assert field in r.text
