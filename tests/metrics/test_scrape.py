"""The scrape's reading: shared by scrapes within the cache time (one reading at a time),
bounded by the DRIFT_METRICS_MAX_* caps (drifted features kept first), and the alerts and
delivery series from their services' counts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from drift_backend.metrics import families as f
from drift_backend.metrics.exposition import render
from drift_backend.metrics.families import Sample
from drift_backend.metrics.service import Scraper
from drift_backend.metrics.sources import (
    Limits,
    alerts_firing_source,
    deliveries_source,
    drift_gauges,
    feature_samples,
)
from drift_backend.store.database import Database

from tests.conftest import Api
from tests.metrics.conftest import baseline, check, parse, select


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_source() -> tuple[Any, list[int]]:
    reads: list[int] = []

    async def source(db: Database, limits: Limits) -> list[Sample]:
        reads.append(1)
        await asyncio.sleep(0)  # let concurrent scrapes queue up behind this reading
        return [Sample(f.RUNS, ("Completed",), float(len(reads)))]

    return source, reads


async def test_scrapes_within_the_cache_time_share_one_reading() -> None:
    source, reads = counting_source()
    clock = Clock()
    scraper = Scraper(
        limits=Limits(), cache_seconds=5, read_timeout_seconds=5, sources=[source], clock=clock
    )
    db: Any = None  # the source above reads nothing
    first = await asyncio.gather(*(scraper.samples(db) for _ in range(5)))
    assert len(reads) == 1
    assert all(samples == first[0] for samples in first)
    clock.now = 4.9
    await scraper.samples(db)
    assert len(reads) == 1
    clock.now = 5.0
    again = await scraper.samples(db)
    assert len(reads) == 2
    assert Sample(f.RUNS, ("Completed",), 2.0) in again
    assert Sample(f.UP, (), 1.0) in again


async def test_a_bug_in_a_source_is_not_hidden_as_an_outage() -> None:
    async def broken(db: Database, limits: Limits) -> list[Sample]:
        raise KeyError("model")

    scraper = Scraper(limits=Limits(), cache_seconds=0, read_timeout_seconds=5, sources=[broken])
    with pytest.raises(KeyError):
        await scraper.samples(None)  # type: ignore[arg-type]


def test_feature_samples_skip_what_a_test_does_not_give() -> None:
    distance = {"feature": "x", "test": "wasserstein", "distance": 0.2, "drifted": True}
    p_value = {"feature": "c", "test": "chi_square", "p_value": 0.01, "p_value_adjusted": 0.03}
    untestable = {"feature": "empty", "test": None, "drifted": False}
    names = {s.family.name for s in feature_samples("e", "m", distance)}
    assert names == {"drift_monitor_feature_distance", "drift_monitor_feature_drifted"}
    names = {s.family.name for s in feature_samples("e", "m", p_value)}
    assert names == {
        "drift_monitor_feature_p_value",
        "drift_monitor_feature_p_value_adjusted",
        "drift_monitor_feature_drifted",
    }
    assert feature_samples("e", "m", untestable) == []


async def test_alert_and_delivery_sources_render_their_services_counts(
    worker_api: Api, raw_db: Any
) -> None:
    exp = await worker_api.experiment("alice")
    quiet = await worker_api.experiment("alice")

    async def delivery_counts(db: Database) -> dict[str, int]:
        return {"pending": 2, "sending": 0, "delivered": 7, "failed": 1, "refused": 0}

    async def firing_count(db: Database) -> dict[str, int]:
        # By experiment id, as alerts.service.firing_count answers; a deleted experiment's
        # id (no name to show) is left out.
        return {exp["id"]: 3, quiet["id"]: 0, "gone": 1}

    scraper = Scraper(
        limits=Limits(),
        cache_seconds=0,
        read_timeout_seconds=5,
        sources=[deliveries_source(delivery_counts), alerts_firing_source(firing_count)],
    )
    samples = await scraper.samples(raw_db(worker_api))
    series = parse(render(samples, []).decode())
    deliveries = {
        dict(k)["state"]: v for k, v in select(series, "drift_monitor_deliveries").items()
    }
    assert deliveries == {
        "pending": 2.0,
        "sending": 0.0,
        "delivered": 7.0,
        "failed": 1.0,
        "refused": 0.0,
    }
    firing = select(series, "drift_monitor_alerts_firing")
    assert firing == {(("experiment", exp["name"]),): 3.0}


async def test_caps_keep_the_drifted_features_and_count_what_they_leave_out(
    worker_api: Api, raw_db: Any
) -> None:
    api = worker_api
    exp = await api.experiment("alice")
    await baseline(api, exp["id"], "m1")
    await check(api, exp["id"], "m1", shift=0.6)  # x drifts, y and c do not
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/drift",
        "alice",
        json={"job_status": "Completed", "model": "m0", "drift_detected": False},
    )
    assert r.status_code == 201
    db = raw_db(api)
    samples = await drift_gauges(db, Limits(max_experiments=1000, max_models=1, max_features=1))
    mine = [s for s in samples if s.labels[:1] == (exp["name"],)]
    # One model: the most recently run (m0, a client's run); m1 and its features left out.
    assert {s.labels[1] for s in mine} == {"m0"}
    omitted = {s.labels[0]: s.value for s in samples if s.family is f.OMITTED}
    assert omitted["models"] >= 1
    samples = await drift_gauges(db, Limits(max_experiments=1000, max_models=5, max_features=1))
    features = {
        s.labels[2] for s in samples if s.family is f.FEATURE_DRIFTED and s.labels[0] == exp["name"]
    }
    assert features == {"x"}  # the drifted one is kept under the cap
    omitted = {s.labels[0]: s.value for s in samples if s.family is f.OMITTED}
    assert omitted["features"] >= 2
    await api.experiment("alice")  # a second experiment, for the experiments' cap
    samples = await drift_gauges(db, Limits(max_experiments=1, max_models=5, max_features=1))
    omitted = {s.labels[0]: s.value for s in samples if s.family is f.OMITTED}
    assert omitted["experiments"] >= 1
    experiments = {s.labels[0] for s in samples if s.family is f.LAST_RUN}
    assert len(experiments) <= 1
