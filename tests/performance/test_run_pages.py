"""Keyset pages of a model's metrics per drift run (``GET .../performance/runs``): paging
forward by ``next`` and back by ``previous`` gives every run once, newest first (ties on the
run's time by id); and a page reads about what it holds, not every run of the model
(SecantusDB's ``explain`` with ``executionStats`` of the reads a page sends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from drift_backend.performance import repository
from drift_backend.store.database import Database, client_options
from drift_backend.store.keyset import Cursor
from pymongo import AsyncMongoClient, monitoring

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"
#: What a command carries besides what it asks (the driver's session, deadline, ...).
ENVELOPE = {"lsid", "$db", "$clusterTime", "$readPreference", "txnNumber", "maxTimeMS"}


class Reads(monitoring.CommandListener):
    """The find commands a client sends."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate", "count"):
            self.commands.append({k: v for k, v in event.command.items() if k not in ENVELOPE})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def listened(api: Api) -> AsyncIterator[tuple[Database, Reads]]:
    reads = Reads()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        api.settings.mongodb_url.get_secret_value(),
        **{**client_options(60.0), "event_listeners": [reads]},
    )
    yield client[api.settings.mongodb_database], reads
    await client.close()


async def _runs(api: Api, exp: str, **params: Any) -> dict[str, Any]:
    r = await api.request(
        "GET",
        f"{PREFIX}/experiment/{exp}/performance/runs",
        "alice",
        params={"model": "m", **params},
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_pages_give_every_run_once_both_ways(api: Api) -> None:
    await api.register("alice")
    exp = str((await api.experiment("alice"))["id"])
    base = f"{PREFIX}/experiment/{exp}"
    now = datetime.now(UTC).replace(microsecond=0)
    # Eight runs: minutes to days back, three at one time (ordered by id among themselves),
    # some exactly a window's span (1 h, 8 h: store/keyset.py) from another, so pages'
    # windows start and end on a run.
    times = [now - timedelta(minutes=3), now - timedelta(minutes=63)]
    times += [now - timedelta(hours=5)] * 3
    times += [now - timedelta(hours=13), now - timedelta(days=2), now - timedelta(days=6)]
    created: list[tuple[datetime, str]] = []
    for i, at in enumerate(times):
        r = await api.request(
            "POST",
            f"{base}/drift",
            "alice",
            json={"model": "m", "job_status": "Running", "created_at": at.isoformat()},
        )
        assert r.status_code == 201, r.text
        run = str(r.json()["id"])
        created.append((datetime.fromisoformat(r.json()["created_at"]), run))
        table = pa.table({"id": [f"{i}-a", f"{i}-b"], "y_pred": ["0", "1"]})
        await post_table(api, base + "/predictions", table, model="m", run=run)
    # A run of the model without predictions has no metrics, and is not listed.
    r = await api.request("POST", f"{base}/drift", "alice", json={"model": "m"})
    assert r.status_code == 201, r.text
    expected = [run for _, run in sorted(created, reverse=True)]

    pages = [await _runs(api, exp, limit=3)]
    assert pages[0]["previous"] is None
    while pages[-1]["next"] is not None:
        pages.append(await _runs(api, exp, limit=3, after=pages[-1]["next"]))
    forward = [[run["run_id"] for run in page["runs"]] for page in pages]
    assert forward == [expected[0:3], expected[3:6], expected[6:]]
    assert len(expected) == 8
    for run in pages[1]["runs"]:
        assert (run["n_predicted"], run["n_labelled"]) == (2, 0)

    # Back from the last page by ``previous``: the same pages, to the newest (previous null).
    back = [pages[-1]]
    while back[-1]["previous"] is not None:
        back.append(await _runs(api, exp, limit=3, before=back[-1]["previous"]))
    backward = [[run["run_id"] for run in page["runs"]] for page in reversed(back)]
    assert backward == forward
    assert back[-1]["previous"] is None

    # One page of them all; cursors this server never gave are a 422 naming the parameter.
    assert [run["run_id"] for run in (await _runs(api, exp, limit=10))["runs"]] == expected
    r = await api.request(
        "GET", base + "/performance/runs", "alice", params={"model": "m", "after": "nonsense"}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["after"]


def _run_doc(exp: str, model: str, i: int, at: datetime) -> dict[str, Any]:
    """A run document as ``repository.add_to_runs`` makes it (a few predictions)."""
    run_id = f"run-{i:05d}"
    return {
        "_id": repository.run_key(exp, model, run_id),
        **repository.run_fields(exp, model, run_id, at),
        "n": 3,
        "v": 1,
    }


async def _examined(db: Database, reads: Reads) -> int:
    total = 0
    for command in reads.commands:
        explained = await db.command("explain", command, verbosity="executionStats")
        total += int(explained["executionStats"]["totalDocsExamined"])
    return total


async def test_a_page_reads_what_it_holds_not_every_run(
    api: Api, listened: tuple[Database, Reads]
) -> None:
    db, reads = listened
    exp = "exp-pages"
    now = datetime.now(UTC).replace(microsecond=0)
    costs = []
    for size, newest in ((100, now), (3000, now - timedelta(days=1))):
        # The second lot is older: the newest page stays the first lot's. Another model's
        # runs, at the same times, are never read.
        docs = [
            _run_doc(exp, model, i, newest - timedelta(minutes=5 * i))
            for model in ("m", "other")
            for i in range(size)
        ]
        for doc in docs:
            doc["_id"] += f"-{size}"
            doc["run_id"] += f"-{size}"
        await db[repository.RUNS].insert_many(docs)

        reads.commands.clear()
        page = await repository.page_runs(db, exp, "m", after=None, before=None, limit=10)
        assert [doc["run_id"] for doc in page.items] == [f"run-{i:05d}-100" for i in range(10)]
        costs.append(await _examined(db, reads))

    # 3,100 runs of the model (and as many of another) cost the first page what 100 did.
    assert costs[0] == costs[1], costs
    assert costs[0] < 50, costs
    # A page deep in the history (after the model's 2,000th run) costs about as little.
    older = sorted(
        [d async for d in db[repository.RUNS].find({"experiment_id": exp, "model": "m"})],
        key=lambda d: (d["run_created_at"], d["_id"]),
        reverse=True,
    )
    cursor = Cursor(older[1999]["run_created_at"], older[1999]["run_id"])
    reads.commands.clear()
    page = await repository.page_runs(db, exp, "m", after=cursor, before=None, limit=10)
    assert [d["_id"] for d in page.items] == [d["_id"] for d in older[2000:2010]]
    assert await _examined(db, reads) < 50
