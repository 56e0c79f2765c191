"""A scrape's MongoDB reading is bounded: the documents it examines (SecantusDB's ``explain``
with ``executionStats`` of every read it sends) do not grow with an experiment's runs, it
sends nothing to ``drifts``, and what it reports equals counting the runs themselves."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.charts import run_counts
from drift_backend.charts.repository import check_run_document, feature_documents
from drift_backend.drifts.schemas import SCHEMA_VERSION
from drift_backend.metrics.service import Scraper
from drift_backend.metrics.sources import Limits
from drift_backend.store.database import Database
from pymongo import AsyncMongoClient, monitoring

from tests.conftest import Api

MODELS = ("m1", "m2", "m3")
FEATURES = [f"f{i}" for i in range(5)]
#: What a command carries besides what it asks (the driver's session, deadline, ...).
ENVELOPE = {"lsid", "$db", "$clusterTime", "$readPreference", "txnNumber", "maxTimeMS"}


class Reads(monitoring.CommandListener):
    """The read commands a client sends."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate", "count", "distinct"):
            command = {k: v for k, v in event.command.items() if k not in ENVELOPE}
            self.commands.append(command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def run_doc(exp: str, model: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    """A run as ``drifts/service.create`` stores it (and a finish leaves it)."""
    status = rng.choice(["Completed", "Completed", "Completed", "Failed", "Running"])
    drift = status == "Completed" and rng.random() < 0.4
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # BSON keeps milliseconds
    return {
        "_id": str(uuid.uuid4()),
        "experiment_id": exp,
        "schema_version": SCHEMA_VERSION,
        "created_at": at,
        "updated_at": at,
        "finished_at": None if status == "Running" else at,
        "created_by": None,
        "job_status": status,
        "model": model,
        "tags": [],
        "drift_detected": drift,
        "parameters": {},
        "concept_drift": None,
        "data_drift": {"drift": drift, "parameters": {}} if status == "Completed" else None,
        "error": {"type": "Boom", "message": "x"} if status == "Failed" else None,
    }


def check_report(rng: random.Random) -> dict[str, Any]:
    features = [
        {
            "feature": name,
            "test": "ks",
            "p_value": rng.random(),
            "p_value_adjusted": rng.random(),
            "distance": None,
            "threshold": 0.05,
            "drifted": rng.random() < 0.3,
            "exact": True,
        }
        for name in FEATURES
    ]
    drifted = sum(1 for f in features if f["drifted"])
    return {
        "dataset_drift": drifted >= 2,
        "drift_share": drifted / len(features),
        "features": features,
        "violations": [],
    }


async def add_runs(db: Database, exp: str, n: int, newest: datetime, seed: int) -> None:
    """``n`` runs of the models every 5 minutes back from ``newest``, every 10th Completed
    one a server check with its chart documents (written by the charts repository's own
    builders), inserted directly; then counted, as start-up counts stored runs."""
    rng = random.Random(seed)
    runs, features, checks = [], [], []
    for i in range(n):
        run = run_doc(exp, MODELS[i % len(MODELS)], newest - timedelta(minutes=5 * i), rng)
        if i % 10 == 0 and run["job_status"] == "Completed":
            report = check_report(rng)
            run["drift_detected"] = report["dataset_drift"]
            features += feature_documents(run, report)
            checks.append(check_run_document(run, report))
        runs.append(run)
    await db.drifts.insert_many(runs)
    if checks:
        await db.feature_results.insert_many(features)
        await db.check_runs.insert_many(checks)
    await run_counts.rebuild(db, exp)


async def examined(db: Database, reads: Reads) -> tuple[int, set[str]]:
    """The documents the recorded reads examined, and the collections they read."""
    total, collections = 0, set()
    for command in reads.commands:
        name = next(iter(command))
        collections.add(str(command[name]))
        explained = await db.command("explain", command, verbosity="executionStats")
        total += int(explained["executionStats"]["totalDocsExamined"])
    return total, collections


async def naive(db: Database, exp: str) -> dict[str, Any]:
    """The scrape's values counted from the runs themselves."""
    statuses = {
        status: await db.drifts.count_documents({"job_status": status})
        for status in ("Running", "Completed", "Failed")
    }
    models: dict[str, dict[str, Any]] = {}
    async for run in db.drifts.find({"experiment_id": exp}):
        row = models.setdefault(run["model"], {"last": None, "completed": None})
        if row["last"] is None or run["created_at"] > row["last"]:
            row["last"] = run["created_at"]
        if run["job_status"] == "Completed" and (
            row["completed"] is None or run["created_at"] > row["completed"][0]
        ):
            row["completed"] = (run["created_at"], run["drift_detected"])
    return {"statuses": statuses, "models": models}


@pytest.fixture
async def scrape_db(api_factory: Any) -> AsyncIterator[tuple[Api, Database, Reads]]:
    # The runs inserted below are old and some Running: the stale-run sweeper must leave
    # them alone while the test compares counts.
    api: Api = await api_factory(run_timeout_seconds=10 * 365 * 86400)
    await api.register("alice")
    reads = Reads()
    # The backend's client settings, with a listener that sees every command.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        api.settings.mongodb_url.get_secret_value(),
        tz_aware=True,
        uuidRepresentation="standard",
        event_listeners=[reads],
    )
    yield api, client[api.settings.mongodb_database], reads
    await client.close()


async def test_a_scrape_reads_the_same_documents_at_any_number_of_runs(
    scrape_db: tuple[Api, Database, Reads],
) -> None:
    api, db, reads = scrape_db
    exp = await api.experiment("alice")
    now = datetime.now(UTC)
    scraper = Scraper(limits=Limits(), cache_seconds=0, read_timeout_seconds=60)

    costs = []
    for size, newest, seed in ((150, now, 1), (3000, now - timedelta(days=1), 2)):
        # The second lot is older: the newest runs and checks stay those of the first.
        await add_runs(db, exp["id"], size, newest, seed)
        reads.commands.clear()
        samples = await scraper.samples(db)
        cost, collections = await examined(db, reads)
        costs.append((cost, len(reads.commands)))
        # Never a read of the runs: per-model totals, and the newest check's features.
        assert "drifts" not in collections
        assert "check_runs" not in collections

        values = {(s.family.name, s.labels): s.value for s in samples}
        expected = await naive(db, exp["id"])
        assert values[("drift_monitor_up", ())] == 1.0
        for status, n in expected["statuses"].items():
            assert values[("drift_monitor_runs", (status,))] == n
        for model, row in expected["models"].items():
            labels = (exp["name"], model)
            assert values[("drift_monitor_last_run_timestamp_seconds", labels)] == pytest.approx(
                row["last"].timestamp()
            )
            assert values[("drift_monitor_dataset_drift", labels)] == float(row["completed"][1])
    assert costs[0] == costs[1], costs  # 3,150 runs cost what 150 did
