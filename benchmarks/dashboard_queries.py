"""The dashboard's queries on an experiment with 100,000 runs against one with 100.

Run from the repository root: ``uv run python benchmarks/dashboard_queries.py [--quick]``
(``make benchmark-dashboard``). Both experiments are filled straight into SecantusDB with
``insert_many`` of documents shaped as the backend writes them (the chart documents by the
charts repository's own builders), then the backend (uvicorn, a separate process) is asked
over HTTP, one request at a time, for the experiment page's runs and each chart's data.
Prints medians, p95, the 100k/100 ratio, and ``explain()`` of each query's plan; results go
to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
from drift_backend.charts import check_counts, feature_counts, run_counts
from drift_backend.charts import queries as chart_queries
from drift_backend.charts.buckets import DEFAULT_BUCKETS, window
from drift_backend.charts.repository import check_run_document, feature_documents
from drift_backend.devstack.services import free_port, start_backend
from drift_backend.drifts.schemas import SCHEMA_VERSION
from drift_backend.drifts.timeline import timeline_pipeline
from drift_backend.metrics.service import Scraper
from drift_backend.metrics.sources import Limits
from drift_backend.store.keyset import keyset_page
from pymongo import AsyncMongoClient, monitoring

from benchmarks._docs import write_section
from benchmarks._harness import machine, register, stack

HEADING = "## Dashboard queries: 100,000 runs against 100"
DATABASE = "drift_benchmark_dashboard"
FEATURES = [f"f{i:02d}" for i in range(20)]
VIOLATION_KINDS = ["baseline_drift_check", "completeness_check", "data_type_check"]
#: The big experiment's runs are spread evenly over this long, up to now (a monitor running
#: every ~5 minutes); the small one runs at the same pace, so it is only hours old: both
#: experiments are the same monitor at two ages, and a one-day window holds runs in both.
HISTORY = timedelta(days=365)
CHECK_SHARE = 10  # every 10th run is a server check with a report
BATCH = 5000


def _ms(value: datetime) -> datetime:
    """BSON keeps milliseconds (drift documents are stored that way)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def report_for(rng: random.Random, i: int) -> dict[str, Any]:
    """A check report of 20 features; feature k drifts with probability (k + 1) / 60."""
    features = []
    for k, name in enumerate(FEATURES):
        drifted = rng.random() < (k + 1) / 60
        p = rng.uniform(0.0, 0.05) if drifted else rng.uniform(0.05, 1.0)
        features.append(
            {
                "feature": name,
                "kind": "numerical",
                "test": "ks",
                "statistic": rng.random(),
                "p_value": p,
                "p_value_adjusted": min(1.0, p * 20),
                "distance": None,
                "threshold": 0.05,
                "drifted": drifted,
                "exact": True,
                "untestable": None,
            }
        )
    drifted_names = [f["feature"] for f in features if f["drifted"]]
    violations = [
        {"feature_name": "f00", "constraint_check_type": rng.choice(VIOLATION_KINDS)}
        for _ in range(rng.choice([0, 0, 0, 1, 2]))
    ]
    return {
        "dataset_drift": len(drifted_names) >= 10,
        "drift_share": len(drifted_names) / len(FEATURES),
        "drifted_features": drifted_names,
        "n_tested": len(FEATURES),
        "features": features,
        "violations": violations,
    }


def documents(
    experiment_id: str, runs: int, step: timedelta, user: str, now: datetime, seed: int
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(collection, a batch of documents): ``runs`` runs ``step`` apart up to ``now``, as
    ``drifts/service.create`` stores them (and ``complete_check`` finishes a check's), chart
    data by the charts repository."""
    rng = random.Random(seed)
    batches: dict[str, list[dict[str, Any]]] = {
        "drifts": [],
        "feature_results": [],
        "check_runs": [],
    }
    for i in range(runs):
        created = _ms(now - step * (runs - i))
        newest = i >= runs - 3  # the last few still run
        status = "Running" if newest else ("Failed" if rng.random() < 0.05 else "Completed")
        check = i % CHECK_SHARE == 0 and status == "Completed"
        report = report_for(rng, i) if check else None
        drift = bool(report["dataset_drift"]) if report else rng.random() < 0.3
        run: dict[str, Any] = {
            "_id": str(uuid.uuid4()),
            "experiment_id": experiment_id,
            "schema_version": SCHEMA_VERSION,
            "created_at": created,
            "updated_at": created,
            "finished_at": None if status == "Running" else created,
            "created_by": user,
            "job_status": status,
            "model": "m1",
            "tags": ["nightly"],
            "drift_detected": status == "Completed" and drift,
            "parameters": {"window": 500, "detector": "ks"},
            "concept_drift": None,
            "data_drift": {"drift": drift, "parameters": {}} if status == "Completed" else None,
            "error": {"type": "Boom", "message": "x"} if status == "Failed" else None,
        }
        if report is not None:
            run["parameters"] = {"check": {"baseline_id": "b", "rows": 1000, "mode": "reduced"}}
            batches["feature_results"] += feature_documents(run, report)
            batches["check_runs"].append(check_run_document(run, report))
        batches["drifts"].append(run)
        for name, docs in batches.items():
            if len(docs) >= BATCH:
                yield name, docs
                batches[name] = []
    for name, docs in batches.items():
        if docs:
            yield name, docs


@dataclass
class Query:
    label: str
    method: str
    path: str
    params: dict[str, Any]
    body: Any = None
    #: Follow this many ``next`` cursors first (a keyset page further back).
    pages_back: int = 0


#: ``/metrics`` (outside the experiment's routes; it reads every experiment).
METRICS = Query("/metrics scrape (every experiment)", "GET", "/metrics", {})


def queries(window_1d: dict[str, str]) -> list[Query]:
    charts = "/charts"
    return [
        Query("runs page (keyset, 50 newest)", "POST", "/drift/page", {"limit": 50}, {}),
        Query(
            "runs page (keyset), model m1", "POST", "/drift/page", {"limit": 50}, {"model": "m1"}
        ),
        Query("runs page (keyset), 2nd page", "POST", "/drift/page", {"limit": 50}, {}, 1),
        Query(
            "v1 drift/search (50 newest, with total)",
            "POST",
            "/drift/search",
            {"page_size": 50},
            {},
        ),
        Query("timeline (30 days)", "GET", charts + "/timeline", {}),
        Query("timeline (1 day)", "GET", charts + "/timeline", dict(window_1d)),
        Query("feature f19 history (30 days)", "GET", charts + "/features/f19", {}),
        Query("feature f19 history (1 day)", "GET", charts + "/features/f19", dict(window_1d)),
        Query("heatmap (50 runs x 30 features)", "GET", charts + "/heatmap", {}),
        Query("violations (30 days)", "GET", charts + "/violations", {}),
    ]


async def time_query(
    http: httpx2.AsyncClient, base: str, q: Query, repeats: int, budget: float
) -> list[float]:
    url = base + q.path
    params = dict(q.params)
    for _ in range(q.pages_back):
        page = await http.request(q.method, url, params=params, json=q.body)
        params["after"] = page.raise_for_status().json()["next"]
    q = Query(q.label, q.method, q.path, params, q.body)
    for _ in range(2):  # warm-up
        (await http.request(q.method, url, params=q.params, json=q.body)).raise_for_status()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        response = await http.request(q.method, url, params=q.params, json=q.body)
        times.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    if q.path == METRICS.path and "\ndrift_monitor_up 1" not in "\n" + response.text:
        # A scrape past its read deadline answers 200 with drift_monitor_up 0: not a time.
        raise RuntimeError("/metrics could not read MongoDB (drift_monitor_up is not 1)")
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _plan(node: dict[str, Any]) -> str:
    """The stage chain of a winning plan, e.g. ``SORT <- FETCH <- IXSCAN(index)``."""
    parts = []
    while node:
        stage = node.get("stage", "?")
        if stage == "IXSCAN":
            stage = f"IXSCAN({node.get('indexName')})"
        parts.append(stage)
        node = node.get("inputStage") or {}
    return " <- ".join(parts)


def _winning(explained: dict[str, Any]) -> dict[str, Any]:
    planner = explained.get("queryPlanner")
    if planner is None:
        for stage in explained.get("stages", []):
            if "$cursor" in stage:
                planner = stage["$cursor"]["queryPlanner"]
                break
    return dict((planner or {}).get("winningPlan") or {})


class Recorder:
    """A collection that remembers the filters of the finds sent through it."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.filters: list[dict[str, Any]] = []

    def find(self, flt: dict[str, Any], *args: Any) -> Any:
        self.filters.append(flt)
        return self.collection.find(flt, *args)


async def keyset_examined(db: Any, exp: str, now: datetime, limit: int = 50) -> tuple[int, int]:
    """(finds, documents examined) of the newest keyset page of ``limit`` on SecantusDB: each
    find the page sends, explained with ``executionStats``."""
    recorder = Recorder(db.drifts)
    await keyset_page(
        recorder, {"experiment_id": exp}, after=None, before=None, limit=limit, now=now
    )
    examined = 0
    for flt in recorder.filters:
        explained = await db.command(
            "explain",
            {
                "find": "drifts",
                "filter": flt,
                "sort": {"created_at": -1, "_id": -1},
                "limit": limit + 1,
            },
            verbosity="executionStats",
        )
        examined += int(explained["executionStats"]["totalDocsExamined"])
    return len(recorder.filters), examined


class Reads(monitoring.CommandListener):
    """The read commands a client sends (what one /metrics reading asks)."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate", "count", "distinct"):
            skip = {"lsid", "$db", "$clusterTime", "$readPreference", "txnNumber", "maxTimeMS"}
            self.commands.append({k: v for k, v in event.command.items() if k not in skip})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def metrics_examined(mongo_url: str) -> tuple[int, int]:
    """(reads, documents examined) of one /metrics reading of the whole database: its
    sources run here with a listener, each read explained with ``executionStats``."""
    reads = Reads()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, tz_aware=True, event_listeners=[reads]
    )
    db = client[DATABASE]
    try:
        scraper = Scraper(limits=Limits(), cache_seconds=0, read_timeout_seconds=300)
        await scraper.samples(db)
        examined = 0
        for command in reads.commands:
            explained = await db.command("explain", command, verbosity="executionStats")
            examined += int(explained["executionStats"]["totalDocsExamined"])
    finally:
        await client.close()
    return len(reads.commands), examined


async def search_examined(db: Any, exp: str, now: datetime) -> tuple[int, int]:
    """(finds, documents examined) of the v1 search's first page of 50 (newest first, read
    by keyset windows: ``api/listing.py``) and its total (``run_totals``)."""
    finds, examined = await keyset_examined(db, exp, now, limit=50)
    explained = await db.command(
        "explain",
        {"find": "run_totals", "filter": {"experiment_id": exp}},
        verbosity="executionStats",
    )
    return finds + 1, examined + int(explained["executionStats"]["totalDocsExamined"])


async def explain_all(db: Any, exp: str, now: datetime) -> list[str]:
    """The plan of each query the routes above send (built by the same functions)."""
    w = window(None, None, DEFAULT_BUCKETS, now)
    recent = await chart_queries.last_check_runs(db, exp, None, 50, now)
    quarter = run_counts.GRAINS[0]
    first = run_counts.floor(w.start, quarter) + quarter
    last = run_counts.floor(w.end, quarter)
    aggregations = [
        (
            "drifts",
            "timeline: the partial hours at the edges",
            timeline_pipeline(
                exp, None, run_counts.hour_of(w.end), w.end, w.expression("created_at")
            ),
        ),
        (
            "feature_results",
            "feature history: the partial 6 hours at the edges",
            chart_queries.feature_history_pipeline(
                exp, "f19", None, w, run_counts.floor(w.end, quarter), w.end
            ),
        ),
        (
            "check_runs",
            "violations: the partial hours at the edges",
            chart_queries.violations_pipeline(exp, None, w, run_counts.hour_of(w.end), w.end),
        ),
        (
            "feature_results",
            "heatmap: cells of the top features",
            chart_queries.heatmap_pipeline(exp, recent, 30),
        ),
    ]
    lines = []
    finds = [
        (
            "drifts",
            "runs page (keyset): its first window, the last hour",
            {"experiment_id": exp, "created_at": {"$gte": now - timedelta(hours=1)}},
            {"created_at": -1, "_id": -1},
        ),
        (
            "drifts",
            "v1 drift/search page: its first window, the last hour",
            {"experiment_id": exp, "created_at": {"$gte": now - timedelta(hours=1)}},
            {"created_at": -1, "_id": -1},
        ),
        (
            "run_counts",
            "timeline: whole 6-hour spans (their days' documents)",
            run_counts.held_filter(exp, None, run_counts.QUARTER, first, last),
            {},
        ),
        (
            "feature_counts",
            "feature history: whole 6-hour spans (f19's block of their days)",
            feature_counts.spans_filter(exp, "f19", None, first, last),
            {},
        ),
        (
            "violation_counts",
            "violations: whole 6-hour spans (their days' documents)",
            check_counts.quarters_filter(exp, None, first, last),
            {},
        ),
        (
            "check_runs",
            "heatmap: last check runs (last day)",
            {"experiment_id": exp, "created_at": {"$gte": now - timedelta(days=1)}},
            {"created_at": -1, "_id": -1},
        ),
    ]
    for collection, label, flt, sort in finds:
        command = {
            "find": collection,
            "filter": flt,
            **({"sort": sort, "limit": 50} if sort else {}),
        }
        explained = await db.command("explain", command)
        lines.append(f"- {label} (`{collection}`): {_plan(_winning(explained))}")
    totals = await db.command("explain", {"find": "run_totals", "filter": {"experiment_id": exp}})
    lines.append(
        f"- v1 drift/search total (`run_totals`, one document per model): {_plan(_winning(totals))}"
    )
    for collection, label, pipeline in aggregations:
        explained = await db.command(
            "explain", {"aggregate": collection, "pipeline": pipeline, "cursor": {}}
        )
        lines.append(f"- {label} (`{collection}`): {_plan(_winning(explained))}")
    return lines


PACKAGES = ("fastapi", "pymongo", "secantusdb")


async def run(args: argparse.Namespace, mongo_url: str, base: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    sizes = [args.small, args.big]
    user, ids = await register(base, token, [f"bench-{size}" for size in sizes])
    experiments = dict(zip(sizes, ids, strict=True))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[DATABASE]
    now = datetime.now(UTC)
    step = HISTORY / args.big
    inserted: dict[str, int] = {}
    fill = rebuilt = 0.0
    hours = 0
    results: dict[tuple[str, int], list[float]] = {}
    scraped: dict[int, tuple[int, int]] = {}
    async with httpx2.AsyncClient(headers=headers, timeout=600) as http:
        for size, exp in experiments.items():
            t0 = time.perf_counter()
            for collection, docs in documents(exp, size, step, user, now, seed=size):
                await db[collection].insert_many(docs, ordered=False)
                inserted[collection] = inserted.get(collection, 0) + len(docs)
            fill += time.perf_counter() - t0
            # The timeline's counts (and the per-model totals /metrics reads) of runs stored
            # behind the backend's back: what start-up (or `drift-monitor-server
            # rebuild-run-counts`) does for existing data.
            t0 = time.perf_counter()
            hours += await run_counts.rebuild(db, exp)
            rebuilt += time.perf_counter() - t0
            # /metrics reads every experiment: timed with the small one alone, then with
            # both (its row's "100 runs" is the database with the small experiment only).
            results[(METRICS.label, size)] = await time_query(
                http, base, METRICS, args.repeats, args.budget
            )
            scraped[size] = await metrics_examined(mongo_url)
            print(f"filled and scraped: {size} runs", file=sys.stderr)
        print(f"filled in {fill:.0f} s: {inserted}", file=sys.stderr)
        print(f"run counts rebuilt in {rebuilt:.0f} s: {hours} documents", file=sys.stderr)

        day = {"from": (now - timedelta(days=1)).isoformat(), "to": now.isoformat()}
        for q in queries(day):
            for size, exp in experiments.items():
                prefix = f"{base}/api/v1/experiment/{exp}"
                results[(q.label, size)] = await time_query(
                    http, prefix, q, args.repeats, args.budget
                )
                print(f"done: {q.label}, {size} runs", file=sys.stderr)
    plans = await explain_all(db, experiments[args.big], now)
    examined = {size: await keyset_examined(db, exp, now) for size, exp in experiments.items()}
    v1_finds, v1_examined = await search_examined(db, experiments[args.big], now)
    await client.close()

    small, big = args.small, args.big
    lines = [
        f"Machine: {machine(PACKAGES)}. Data: {big:,} runs over the last "
        f"{HISTORY.days} days and {small:,} over the last "
        f"{(step * small).total_seconds() / 3600:.1f} hours, both one run every "
        f"{step.total_seconds() / 60:.1f} minutes "
        f"(every {CHECK_SHARE}th a check with {len(FEATURES)} features), inserted in {fill:.0f} s "
        f"({', '.join(f'{n:,} {c}' for c, n in inserted.items())}). Each query: 2 warm-up "
        f"requests, then up to {args.repeats} sequential ones (at least 5, at most "
        f"{args.budget:g} s); milliseconds over HTTP on loopback. The charts' counts (runs, "
        f"per-model totals, checks) were rebuilt in {rebuilt:.0f} s ({hours:,} run count "
        "documents).",
        "",
        f"| query | {small:,} runs: median | p95 | {big:,} runs: median | p95 | ratio | n |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    verdicts = []
    for q in [*queries(day), METRICS]:
        a, b = results[(q.label, small)], results[(q.label, big)]
        ratio = statistics.median(b) / statistics.median(a)
        lines.append(
            f"| {q.label} | {statistics.median(a):.1f} | {p95(a):.1f} "
            f"| {statistics.median(b):.1f} | {p95(b):.1f} | {ratio:.1f}x | {len(b)} |"
        )
        met = ratio <= 2 and p95(b) < 200
        verdicts.append(f"- {q.label}: {'met' if met else 'MISSED'}")
    lines += [
        "",
        "Target (100k at most 2x the cost of 100, p95 under 200 ms) per query:",
        "",
        *verdicts,
        "",
        f"Query plans on the {big:,}-run experiment (`explain`, winning plan, outermost stage "
        "first):",
        "",
        *plans,
        "",
        "Documents SecantusDB examined (`explain` with `executionStats`) for the newest runs "
        "page of 50:",
        "",
        *(
            f"- keyset page, {size:,} runs: {finds} find(s), {n:,} documents examined"
            for size, (finds, n) in examined.items()
        ),
        f"- v1 `drift/search` page with its total, {big:,} runs: {v1_finds} find(s), "
        f"{v1_examined:,} documents examined (the page by keyset windows, the total from "
        "`run_totals`)",
        "",
        "One `/metrics` reading (every experiment; its sources run with a command listener, "
        "each read explained with `executionStats`):",
        "",
        f"- with the {small:,}-run experiment filled: {scraped[small][0]} reads, "
        f"{scraped[small][1]:,} documents examined",
        f"- with the {big:,}-run one filled too: {scraped[big][0]} reads, "
        f"{scraped[big][1]:,} documents examined (the second experiment's models and newest "
        "check: a cost per experiment and model, none per run)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 runs instead of 100,000")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    args.small, args.big = 100, 10_000 if args.quick else 100_000
    args.repeats, args.budget = 20, 60.0
    with stack() as bench:
        env = bench.backend_env(
            DATABASE,
            DRIFT_LOG_LEVEL="warning",
            # The filled runs are old and some Running: the sweeper must not rewrite them.
            DRIFT_RUN_TIMEOUT_SECONDS=str(10 * 365 * 86400),
            # A 100k-run page can take seconds on SecantusDB; it must not time out.
            DRIFT_MONGODB_TIMEOUT_SECONDS="300",
            # Each scrape reads MongoDB (no 5-second cache of an earlier one).
            DRIFT_METRICS_CACHE_SECONDS="0",
        )
        backend = start_backend(free_port(), env, bench.work / "backend.log")
        try:
            token = bench.issuer.token("bench-user", expires_in=7200)
            report = asyncio.run(run(args, bench.mongo.url, backend.url, token))
        finally:
            backend.stop()
    print(report)
    if not args.no_docs and not args.quick:
        write_section(HEADING, "dashboard_queries", report)


if __name__ == "__main__":
    main()
