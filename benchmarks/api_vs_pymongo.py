"""Drift-run creation through the API against raw PyMongo inserts into the same SecantusDB.

Run from the repository root: ``uv run python benchmarks/api_vs_pymongo.py [--quick]``.
The load generator (httpx2 / PyMongo async clients), the backend (uvicorn, a separate
process) and SecantusDB all share this machine's cores, so the numbers are end-to-end on one
box, not server capacity. Results are printed and written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
from drift_backend.devstack.services import ManagedProcess, free_port, start_backend
from pymongo import AsyncMongoClient

from benchmarks._docs import DOCS, write_section
from benchmarks._harness import machine, register, stack

HEADING = "## Drift-run creation: API vs raw PyMongo"
DATABASE = "drift_benchmark"
# Both sides use start_mongodb's URL, which turns retryable writes off: SecantusDB 0.7.0b3
# scans its record of retryable writes on every write (and sorts it past 10,000), so with
# PyMongo's default inserts slow down steadily and drop ~5x after 10k writes.
BODY: dict[str, Any] = {
    "model": "m1",
    "job_status": "Running",
    "tags": ["a"],
    "parameters": {"window": 500, "threshold": 0.05, "detector": "ks", "features": ["x", "y"]},
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
Op = Callable[[], Awaitable[None]]


@dataclass
class Phase:
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us: dict[str, float]  # CPU time per operation, by process


@dataclass
class Row:
    label: str
    clients: int
    api: list[Phase] = field(default_factory=list)
    raw: list[Phase] = field(default_factory=list)


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a process and its children (uvicorn workers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / CLK_TCK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += proc_cpu(int(child))
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return total


async def measure(op: Op, clients: int, seconds: float, pids: dict[str, int]) -> Phase:
    """``clients`` workers each run ``op`` back to back until the deadline."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while (start := time.perf_counter()) < deadline:
            await op()
            latencies.append(time.perf_counter() - start)

    cpu_before = {name: proc_cpu(pid) for name, pid in pids.items()}
    own_before, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    n = len(latencies)
    cpu = {name: proc_cpu(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["client"] = time.process_time() - own_before
    latencies.sort()
    return Phase(
        ops_per_s=n / elapsed,
        p50_ms=latencies[n // 2] * 1000,
        p99_ms=latencies[min(n - 1, int(n * 0.99))] * 1000,
        cpu_us={name: seconds * 1e6 / n for name, seconds in cpu.items()},
    )


async def bench_row(
    row: Row,
    backend: ManagedProcess,
    mongo: ManagedProcess,
    ctx: dict[str, str],
    args: argparse.Namespace,
) -> None:
    # Idle keep-alive connections dropped by the client before uvicorn's 5 s keep-alive
    # timeout closes them: API phases alternate with raw phases of several seconds, and a
    # connection the server closed as it was reused answered ReadError.
    limits = httpx2.Limits(
        max_connections=row.clients, max_keepalive_connections=row.clients, keepalive_expiry=2.0
    )
    headers = {"Authorization": f"Bearer {ctx['token']}"}
    url = f"{backend.url}/api/v1/experiment/{ctx['experiment']}/drift"
    raw_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo.url,
        tz_aware=True,
        uuidRepresentation="standard",
        maxPoolSize=row.clients,
    )
    drifts = raw_client[DATABASE].drifts
    async with httpx2.AsyncClient(headers=headers, limits=limits, timeout=30) as http:

        async def api_op() -> None:
            response = await http.post(url, json=BODY)
            if response.status_code != 201:
                raise RuntimeError(f"API answered {response.status_code}: {response.text}")

        async def raw_op() -> None:
            # The document the backend would store for BODY (drifts/service.py: create).
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            await drifts.insert_one(
                {
                    "_id": str(uuid.uuid4()),
                    "experiment_id": ctx["experiment"],
                    "schema_version": "1.0.0",
                    "created_at": now,
                    "updated_at": now,
                    "finished_at": None,
                    "created_by": ctx["user"],
                    **BODY,
                    "drift_detected": False,
                    "concept_drift": None,
                    "data_drift": None,
                    "error": None,
                }
            )

        pids = {"backend": backend.process.pid, "db": mongo.process.pid}
        await measure(api_op, row.clients, args.warmup, pids)
        await measure(raw_op, row.clients, args.warmup, pids)
        for _ in range(args.repeats):  # interleaved, so drift in the machine hits both alike
            row.api.append(await measure(api_op, row.clients, args.seconds, pids))
            row.raw.append(await measure(raw_op, row.clients, args.seconds, pids))
    await raw_client.close()


def med(phases: list[Phase], attr: str) -> float:
    return statistics.median(float(getattr(p, attr)) for p in phases)


def ratio(row: Row) -> float:
    """Median of the per-repeat API/raw ratios (each pair ran back to back)."""
    return statistics.median(
        a.ops_per_s / r.ops_per_s for a, r in zip(row.api, row.raw, strict=True)
    )


def cpu(phases: list[Phase], name: str) -> float:
    return statistics.median(p.cpu_us.get(name, 0.0) for p in phases)


def tables(rows: list[Row]) -> str:
    lines = [
        "| backend | clients | API ops/s | raw ops/s | API/raw | API p50 ms | API p99 ms "
        "| raw p50 ms | raw p99 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.clients} | {med(r.api, 'ops_per_s'):.0f} "
            f"| {med(r.raw, 'ops_per_s'):.0f} | {ratio(r):.2f} "
            f"| {med(r.api, 'p50_ms'):.1f} | {med(r.api, 'p99_ms'):.1f} "
            f"| {med(r.raw, 'p50_ms'):.1f} | {med(r.raw, 'p99_ms'):.1f} |"
        )
    lines += [
        "",
        "CPU time per created run, in µs (median over repeats; all processes share the cores):",
        "",
        "| backend | clients | API: load generator | API: backend | API: SecantusDB "
        "| raw: load generator | raw: SecantusDB |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.clients} | {cpu(r.api, 'client'):.0f} | {cpu(r.api, 'backend'):.0f} "
            f"| {cpu(r.api, 'db'):.0f} | {cpu(r.raw, 'client'):.0f} | {cpu(r.raw, 'db'):.0f} |"
        )
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    for r in (r for r in rows if r.clients == 64):
        rate, p99 = ratio(r), med(r.api, "p99_ms")
        out.append(
            f"- {r.label}, 64 clients: API/raw = {rate:.2f} (target >= 0.50: "
            f"{'met' if rate >= 0.5 else 'MISSED'}); API p99 = {p99:.1f} ms "
            f"(target < 100 ms: {'met' if p99 < 100 else 'MISSED'})"
        )
    return out


PACKAGES = ("fastapi", "uvicorn", "pymongo", "httpx2", "secantusdb")


async def setup(base: str, token: str) -> dict[str, str]:
    """Register the benchmark user and create its experiment through the API."""
    user, (experiment,) = await register(base, token, ["bench"])
    return {"token": token, "user": user, "experiment": experiment}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases (under ~60 s)")
    parser.add_argument("--no-docs", action="store_true", help=f"do not update {DOCS.name}")
    args = parser.parse_args()
    args.warmup, args.seconds, args.repeats = (0.5, 1.0, 3) if args.quick else (2.0, 4.0, 5)
    plan = [("1 worker", 1, n) for n in (1, 16, 64)] + [("2 workers", 2, n) for n in (16, 64)]
    rows: list[Row] = []
    with stack() as bench:
        token = bench.issuer.token("bench-user", expires_in=3600)
        ctx: dict[str, str] = {}
        for workers in sorted({w for _, w, _ in plan}):
            log = bench.work / f"backend{workers}.log"
            env = bench.backend_env(DATABASE)
            backend = start_backend(free_port(), env, log, workers=workers)
            try:
                ctx = ctx or asyncio.run(setup(backend.url, token))
                for label, w, clients in plan:
                    if w == workers:
                        rows.append(Row(label, clients))
                        asyncio.run(bench_row(rows[-1], backend, bench.mongo, ctx, args))
                        print(f"done: {label}, {clients} clients", file=sys.stderr)
            finally:
                backend.stop()
    mode = "quick" if args.quick else "full"
    report = "\n".join(
        [
            f"Machine: {machine(PACKAGES)}. Run: `{mode}` ({args.repeats} repeats x {args.seconds:g} s "
            f"per side after {args.warmup:g} s warm-up; medians).",
            "",
            tables(rows),
            "",
            "Targets (64 clients: API at least half the raw insert rate; API p99 under 100 ms):",
            "",
            *verdicts(rows),
        ]
    )
    print(report)
    if not args.no_docs:
        write_section(HEADING, "api_vs_pymongo", report)


if __name__ == "__main__":
    main()
