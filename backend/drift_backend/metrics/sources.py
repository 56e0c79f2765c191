"""Where the MongoDB series come from: each source is one small async function that asks a
domain's service and returns samples; :data:`SOURCES` is the table a scrape runs.

Sources never read a collection themselves (one collection, one owner): runs from
``drifts/``, the queue from ``jobs/``, check results from ``charts/``, experiments and their
``metrics`` settings from ``experiments/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drift_backend.alerts import service as alerts
from drift_backend.charts import service as charts
from drift_backend.experiments import service as experiments
from drift_backend.jobs.queue import queue_stats
from drift_backend.metrics import families as f
from drift_backend.metrics.families import Sample
from drift_backend.notify import service as notify
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database


@dataclass(frozen=True)
class Limits:
    """The caps on one scrape's drift series (``DRIFT_METRICS_MAX_*``)."""

    max_experiments: int = 500
    max_models: int = 50
    max_features: int = 100
    #: Experiments read at once (each is a few small queries).
    concurrency: int = 4


Source = Callable[[Database, Limits], Awaitable[list[Sample]]]


def _seconds(at: datetime) -> float:
    return at.timestamp()


async def runs_by_status(db: Database, limits: Limits) -> list[Sample]:
    # The per-model totals kept as runs change state: the cost is the number of models.
    counts = await charts.runs_by_status(db)
    return [Sample(f.RUNS, (status,), float(n)) for status, n in counts.items()]


async def job_queue(db: Database, limits: Limits) -> list[Sample]:
    now = utcnow()
    stats = await queue_stats(db, now)
    oldest = stats.oldest_queued_at
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return [
        Sample(f.JOBS, ("queued",), float(stats.queued)),
        Sample(f.JOBS, ("running",), float(stats.running)),
        Sample(f.JOBS, ("failed",), float(stats.failed)),
        Sample(f.JOBS_STALE, (), float(stats.stale)),
        Sample(f.QUEUE_OLDEST_AGE, (), age),
    ]


def feature_samples(experiment: str, model: str, result: Mapping[str, Any]) -> list[Sample]:
    """A feature's series from its stored result (``charts`` ``feature_results``); none for
    a feature that could not be tested (it has no test to name)."""
    test = result.get("test")
    if not test:
        return []
    labels = (experiment, model, str(result["feature"]), str(test))
    samples = [Sample(f.FEATURE_DRIFTED, labels, 1.0 if result.get("drifted") else 0.0)]
    for family, key in (
        (f.FEATURE_P_VALUE, "p_value"),
        (f.FEATURE_P_VALUE_ADJUSTED, "p_value_adjusted"),
        (f.FEATURE_DISTANCE, "distance"),
    ):
        value = result.get(key)
        if value is not None:
            samples.append(Sample(family, labels, float(value)))
    return samples


async def _experiment_samples(
    db: Database, experiment: Mapping[str, Any], limits: Limits
) -> tuple[list[Sample], dict[str, int]]:
    name = str(experiment["name"])
    # One small document per model (``charts`` ``run_totals``), never the runs.
    models = await charts.model_totals(db, str(experiment["id"]))
    omitted = {"models": max(0, len(models) - limits.max_models), "features": 0}
    models = models[: limits.max_models]
    samples: list[Sample] = []
    for row in models:
        model = str(row["model"])
        labels = (name, model)
        samples.append(Sample(f.LAST_RUN, labels, _seconds(row["last_run_at"])))
        if row["drift_detected"] is not None:
            samples.append(Sample(f.DATASET_DRIFT, labels, 1.0 if row["drift_detected"] else 0.0))
        check = row["check"]
        if check is None:
            continue
        samples.append(Sample(f.LAST_CHECK, labels, _seconds(check["created_at"])))
        if check.get("drift_share") is not None:
            samples.append(Sample(f.DATASET_DRIFT_SHARE, labels, float(check["drift_share"])))
        if not experiment["features"] or limits.max_features == 0:
            continue
        results, left_out = await charts.top_features(db, check["run_id"], limits.max_features)
        omitted["features"] += left_out
        for result in results:
            samples.extend(feature_samples(name, model, result))
    return samples, omitted


async def drift_gauges(db: Database, limits: Limits) -> list[Sample]:
    """Per (experiment, model) from its newest run and check; per feature from that check,
    unless the experiment turned its feature series off (``metrics.features``)."""
    shown, total = await experiments.metrics_scope(db, limits.max_experiments)
    gate = asyncio.Semaphore(limits.concurrency)

    async def one(experiment: Mapping[str, Any]) -> tuple[list[Sample], dict[str, int]]:
        async with gate:
            return await _experiment_samples(db, experiment, limits)

    per_experiment = await asyncio.gather(*(one(experiment) for experiment in shown))
    omitted = {"experiments": max(0, total - len(shown)), "models": 0, "features": 0}
    samples: list[Sample] = []
    for found, left_out in per_experiment:
        samples.extend(found)
        for kind, n in left_out.items():
            omitted[kind] += n
    samples.extend(Sample(f.OMITTED, (kind,), float(n)) for kind, n in omitted.items())
    return samples


def delivery_samples(counts: Mapping[str, int]) -> list[Sample]:
    """``drift_monitor_deliveries{state}`` from deliveries counted by state."""
    return [Sample(f.DELIVERIES, (state,), float(n)) for state, n in sorted(counts.items())]


def deliveries_source(count: Callable[[Database], Awaitable[Mapping[str, int]]]) -> Source:
    """The source of ``drift_monitor_deliveries`` from notify's count of deliveries by
    state (``notify.service.delivery_counts``)."""

    async def deliveries_by_state(db: Database, limits: Limits) -> list[Sample]:
        return delivery_samples(await count(db))

    return deliveries_by_state


def alerts_firing_source(count: Callable[[Database], Awaitable[Mapping[str, int]]]) -> Source:
    """The source of ``drift_monitor_alerts_firing{experiment}`` from the alerts' count of
    firing (rule, model) groups by experiment id (``alerts.service.firing_count``),
    labelled by the experiments' names: never an id as a label."""

    async def alerts_firing(db: Database, limits: Limits) -> list[Sample]:
        by_id = {key: n for key, n in (await count(db)).items() if n}
        names = await experiments.names(db, list(by_id)[: limits.max_experiments])
        return [
            Sample(f.ALERTS_FIRING, (names[key],), float(n))
            for key, n in sorted(by_id.items())
            if key in names
        ]

    return alerts_firing


#: What every scrape reads, in order.
SOURCES: tuple[Source, ...] = (
    runs_by_status,
    job_queue,
    drift_gauges,
    alerts_firing_source(alerts.firing_count),
    deliveries_source(notify.delivery_counts),
)
