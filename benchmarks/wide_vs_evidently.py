"""Wide data: a server-side check of 1,000 numerical columns through the API against Evidently.

Run from the repository root: ``uv run python benchmarks/wide_vs_evidently.py [--quick]``
(``--quick``: 200 columns and fewer repeats; ``--no-docs`` leaves ``docs/benchmarks.md``
alone). A 10,000-row reference and a 10,000-row current batch of 1,000 numerical columns,
50 of them drifted (seeded). Ours: the reference uploaded once as a baseline (timed on its
own), then the current batch uploaded and checked and the report read (timed); the size of
what the baseline stores in MongoDB and the backend's peak memory are reported. Evidently:
``DataDriftPreset`` on the same DataFrames in its own virtualenv (see ``_common.py``).
Precision and recall of the drifted-column detection for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the JWT test issuer lives in tests/support

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from drift_backend.baselines.profile import build_profile  # noqa: E402
from drift_backend.checks.config import DriftConfig  # noqa: E402
from drift_backend.checks.engine import run_check  # noqa: E402
from drift_backend.devstack.services import (  # noqa: E402
    ManagedProcess,
    free_port,
    start_backend,
    start_mongodb,
)
from pymongo import MongoClient  # noqa: E402

from benchmarks._common import (  # noqa: E402
    FAMILIES,
    Accuracy,
    Api,
    Memory,
    backend_env,
    draw,
    has_worker_command,
    machine,
    peak_mib,
    population_sd,
    run_evidently,
    start_worker,
    tests_used,
    timed,
    to_ipc,
    worker_label,
)
from benchmarks._docs import DOCS, write_section  # noqa: E402
from tests.support.jwt_issuer import JWTIssuer  # noqa: E402

HEADING = "## Wide data: 1,000 columns vs Evidently"
DATABASE = "drift_benchmark_wide"
WORKER_PROCESSES = 2
ROWS = 10_000
COLUMNS, QUICK_COLUMNS = 1000, 200
DRIFTED_SHARE = 0.05  # 50 of 1,000 columns
SHIFT_SD = 0.3
TARGET = 50.0  # at least 50x faster than Evidently, per check


# --- data ---------------------------------------------------------------------------------------


def frames(
    n_columns: int, rows: int, seed: int = 11
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """Reference, current and the names of the drifted columns.

    Column ``i`` follows family ``FAMILIES[i % 4]`` at a random location and scale; the
    drifted columns (a seeded random 5%) are shifted by ``SHIFT_SD`` of their standard
    deviation in the current frame.
    """
    rng = np.random.default_rng(seed)
    names = [f"x{i:04d}" for i in range(n_columns)]
    spec = [
        (FAMILIES[i % 4], float(rng.uniform(-5, 5)), float(rng.uniform(0.5, 3)))
        for i in range(n_columns)
    ]
    drifted_index = rng.choice(n_columns, max(1, round(n_columns * DRIFTED_SHARE)), replace=False)
    drifted = {names[i] for i in drifted_index}
    ref_rng, cur_rng = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for name, (family, loc, scale) in zip(names, spec, strict=True):
        ref[name] = draw(family, loc, scale, rows, ref_rng)
        shift = SHIFT_SD * population_sd(family, scale) if name in drifted else 0.0
        cur[name] = draw(family, loc, scale, rows, cur_rng) + shift
    return pd.DataFrame(ref), pd.DataFrame(cur), drifted


# --- what the baseline stores -------------------------------------------------------------------


def collection_sizes(mongo_url: str) -> dict[str, tuple[int, int]]:
    """``{collection: (documents, BSON bytes)}`` of the benchmark database (``collStats``)."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    try:
        db = client[DATABASE]
        out: dict[str, tuple[int, int]] = {}
        for name in db.list_collection_names():
            stats = db.command("collStats", name)
            out[name] = (int(stats["count"]), int(stats["size"]))
        return out
    finally:
        client.close()


@dataclass
class Stored:
    """What one baseline upload added to the database, per collection."""

    by_collection: dict[str, tuple[int, int]]

    @classmethod
    def between(
        cls, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
    ) -> Stored:
        delta: dict[str, tuple[int, int]] = {}
        for name, (docs, size) in after.items():
            docs0, size0 = before.get(name, (0, 0))
            if (docs, size) != (docs0, size0):
                delta[name] = (docs - docs0, size - size0)
        return cls(delta)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.by_collection.values())

    def text(self) -> str:
        parts = [
            f"`{name}` {docs:,} document(s), {size / 2**20:.2f} MiB"
            for name, (docs, size) in sorted(self.by_collection.items())
        ]
        return f"{self.total / 2**20:.2f} MiB ({'; '.join(parts) or 'nothing'})"


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Results:
    columns: int = 0
    injected: set[str] = field(default_factory=set)
    upload: list[float] = field(default_factory=list)
    check: list[float] = field(default_factory=list)
    #: The first checks against the new baseline, one at once per statistics process.
    first: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)
    evidently: dict[str, Any] = field(default_factory=dict)
    ours: Accuracy | None = None
    evidently_acc: Accuracy | None = None
    tests_used: str = ""
    features: int = 0
    exact: int | None = None  # features the report marks exact (when reports say so)
    arrow_mib: float = 0.0
    stored: Stored | None = None
    backend_peak: float = 0.0
    worker_memory: Memory | None = None
    separate_worker: bool = False
    standalone_db: bool = False
    #: The machine's 1-minute load average sampled while each timed part ran (2 cores:
    #: above 2, other work shares them and the wall times grow).
    load: dict[str, list[float]] = field(default_factory=dict)


class LoadSampler:
    """The 1-minute load average every second, on a daemon thread, with its time."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), os.getloadavg()[0]))
            time.sleep(1.0)

    def since(self, start: float) -> list[float]:
        return [load for at, load in list(self.samples) if at >= start] or [os.getloadavg()[0]]


LOAD = LoadSampler()


def note_load(res: Results, part: str, start: float) -> None:
    res.load.setdefault(part, []).extend(LOAD.since(start))


def run_ours(
    api: Api, mongo_url: str, res: Results, ref: pd.DataFrame, cur: pd.DataFrame, args: Any
) -> None:
    # Warm-up on a few rows of the same columns: starts the worker's statistics processes.
    api.check(cur.head(500), api.baseline(ref.head(500), "warm-up"))
    before = collection_sizes(mongo_url)
    elapsed, baseline = timed(lambda: api.baseline(ref, "reference"))
    res.upload.append(elapsed)
    res.stored = Stored.between(before, collection_sizes(mongo_url))
    print(f"  baseline upload {elapsed:.2f} s, stored {res.stored.text()}", file=sys.stderr)
    for i in range(1, args.upload_repeats):

        def upload(i: int = i) -> str:
            return api.baseline(ref, f"reference-{i}")

        res.upload.append(timed(upload)[0])
        print(f"  baseline upload {res.upload[-1]:.2f} s", file=sys.stderr)
    # The first check against a new baseline also moves its profile into a statistics
    # process, once per process: one check at once per process, timed apart (the steady
    # state below is what repeated checks cost; the upload line counts these).
    with ThreadPoolExecutor(WORKER_PROCESSES) as pool:
        res.first = list(
            pool.map(lambda _: timed(lambda: api.check(cur, baseline))[0], range(WORKER_PROCESSES))
        )
    print(f"  first checks {', '.join(f'{t:.2f}' for t in res.first)} s", file=sys.stderr)
    report: dict[str, Any] = {}
    for _ in range(args.repeats):
        start = time.monotonic()
        elapsed, report = timed(lambda: api.check(cur, baseline))
        res.check.append(elapsed)
        note_load(res, "checks", start)
        print(f"  check {elapsed:.2f} s", file=sys.stderr)
    res.ours = Accuracy(set(report["drifted_features"]), res.injected)
    res.tests_used = tests_used(report)
    res.features = len(report["features"])
    if any("exact" in f for f in report["features"]):
        res.exact = sum(1 for f in report["features"] if f.get("exact"))


def run_engine(ref: pd.DataFrame, cur: pd.DataFrame, repeats: int) -> list[float]:
    """Our statistics in this process: profile the reference, then ``run_check``; no HTTP,
    no database, no queue (both samples in memory, as Evidently has them)."""
    ref_table = pa.Table.from_pandas(ref, preserve_index=False)
    cur_table = pa.Table.from_pandas(cur, preserve_index=False)
    times = []
    for _ in range(repeats):
        elapsed, _ = timed(lambda: run_check(build_profile(ref_table), cur_table, DriftConfig()))
        times.append(elapsed)
    return times


def render(res: Results, args: argparse.Namespace) -> str:
    upload, check, ev = statistics.median(res.upload), statistics.median(res.check), 0.0
    first = max(res.first)
    ev = statistics.median(res.evidently["times"])
    engine = statistics.median(res.engine)
    assert res.ours is not None
    assert res.evidently_acc is not None
    assert res.stored is not None
    assert res.worker_memory is not None
    main_label = "worker process" if res.separate_worker else "backend process (embedded worker)"
    exact = "" if res.exact is None else f", {res.exact} of them exact"
    mode = "quick" if args.quick else "full"
    lines = [
        f"Machine: {machine(res.evidently)}. Run: `{mode}`, {res.columns:,} columns "
        f"({args.repeats} checks, {args.upload_repeats} baseline upload(s), medians; Evidently "
        f"{args.ev_repeats} run(s)). Worker: {worker_label(res.separate_worker, WORKER_PROCESSES)}."
        + (
            " Database: SecantusDB standalone (`--standalone-db`: no oplog, no change streams;"
            " the worker and waiting requests poll)."
            if res.standalone_db
            else ""
        ),
        "",
        f"{ROWS:,}-row reference and {ROWS:,}-row current batch, {res.columns:,} numerical "
        f"columns, {len(res.injected)} drifted; seconds, median:",
        "",
        "| what | seconds | ours, per check, is faster by | ours, with the baseline upload, "
        "is faster by |",
        "|---|--:|--:|--:|",
        f"| ours, per check: upload the current batch + check + report (API, Arrow; the "
        f"baseline stored once before) | {check:.2f} | | |",
        f"| ours, the baseline upload alone (API, Arrow, {res.arrow_mib:.0f} MiB) | {upload:.2f} "
        "| | |",
        f"| ours, the first check against the new baseline ({len(res.first)} at once, one per "
        f"statistics process, each loading the profile; the slower) | {first:.2f} | | |",
        f"| Evidently `DataDriftPreset` (in-process, no I/O) | {ev:.2f} | {ev / check:.1f}x "
        f"| {ev / (upload + first):.1f}x |",
        f"| ours, statistics only in-process (profile the reference + `run_check`, no I/O) "
        f"| {engine:.2f} | | |",
        "",
        f"- Report: {res.features:,} features{exact}; tests {res.tests_used}.",
        f"- Stored by the baseline (BSON, `collStats` before and after its upload): "
        f"{res.stored.text()}.",
        f"- Peak resident memory (VmHWM): backend process {res.backend_peak:.0f} MiB; "
        f"{res.worker_memory.text(main_label)}; Evidently "
        f"{float(res.evidently.get('peak_mib', 0.0)):.0f} MiB.",
        "",
        f"Accuracy against the injected drift ({len(res.injected)} columns shifted by "
        f"{SHIFT_SD} sd):",
        "",
        f"- ours (default `auto` tests): {res.ours.text()}",
        f"- Evidently (its defaults): {res.evidently_acc.text()}",
        "",
        f"Target: at least {TARGET:.0f}x faster than Evidently per check: {ev / check:.1f}x, "
        f"{'met' if ev / check >= TARGET else 'MISSED'} (counting the baseline upload and the "
        f"first check too: {ev / (upload + first):.1f}x).",
    ]
    loads = ", ".join(
        f"{part} {statistics.median(values):.1f} / {max(values):.1f}"
        for part, values in res.load.items()
        if values
    )
    lines += [
        "",
        f"Load average (1 min, sampled each second while each part ran, median / max; "
        f"{os.cpu_count()} cores, our own processes count too): {loads}. "
        f"Ours per check over the statistics-only line (less sensitive to other load than the "
        f"ratio to Evidently, timed at another moment): {check / engine:.2f}x.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_COLUMNS} columns, fewer repeats"
    )
    parser.add_argument("--no-docs", action="store_true", help=f"do not update {DOCS.name}")
    parser.add_argument("--columns", type=int, help="number of columns (overrides the mode's)")
    parser.add_argument(
        "--embedded-worker",
        action="store_true",
        help="run the worker inside the backend even if `drift-monitor-server worker` exists",
    )
    parser.add_argument(
        "--standalone-db",
        action="store_true",
        help="SecantusDB standalone: no oplog, no change streams (the worker and requests poll)",
    )
    args = parser.parse_args()
    args.repeats, args.upload_repeats, args.ev_repeats = (3, 1, 1) if args.quick else (5, 3, 3)
    n_columns = args.columns or (QUICK_COLUMNS if args.quick else COLUMNS)
    ref, cur, injected = frames(n_columns, ROWS)
    res = Results(columns=n_columns, injected=injected)
    res.separate_worker = not args.embedded_worker and has_worker_command()
    res.standalone_db = args.standalone_db
    res.arrow_mib = len(to_ipc(ref)) / 2**20

    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp_name, JWTIssuer() as issuer:
        tmp = Path(tmp_name)
        print(f"Evidently ({n_columns} columns) ...", file=sys.stderr)
        start = time.monotonic()
        res.evidently = run_evidently(ref, cur, args.ev_repeats, tmp, list(ref.columns))
        note_load(res, "Evidently", start)
        res.evidently_acc = Accuracy(set(res.evidently["drifted"]), injected)
        print(f"  Evidently: {res.evidently['times']}", file=sys.stderr)

        print("our statistics in-process ...", file=sys.stderr)
        start = time.monotonic()
        res.engine = run_engine(ref, cur, args.repeats)
        note_load(res, "statistics only", start)
        print(f"  engine: {res.engine}", file=sys.stderr)

        mongo = start_mongodb(
            free_port(), tmp / "db", log_path=tmp / "secantus.log", standalone=args.standalone_db
        )
        worker: ManagedProcess | None = None
        backend: ManagedProcess | None = None
        try:
            env = backend_env(
                mongo.url,
                issuer.url,
                tmp,
                database=DATABASE,
                embedded=not res.separate_worker,
                worker_processes=WORKER_PROCESSES,
            )
            if args.standalone_db:
                env["DRIFT_CHANGE_STREAMS"] = "false"
            backend = start_backend(free_port(), env, tmp / "backend.log")
            if res.separate_worker:
                worker = start_worker(env, tmp / "worker.log", WORKER_PROCESSES)
            api = Api(backend.url, issuer.token("bench-user", expires_in=7200))
            print("ours ...", file=sys.stderr)
            run_ours(api, mongo.url, res, ref, cur, args)
            res.worker_memory = Memory.of((worker or backend).process.pid)
            res.backend_peak = peak_mib(backend.process.pid)
        except Exception:
            for proc in (backend, worker):
                if proc is not None:
                    print(f"--- {proc.name} log ---\n{proc.log_tail(60)}", file=sys.stderr)
            raise
        finally:
            for proc in (worker, backend, mongo):
                if proc is not None:
                    proc.stop()

    report = render(res, args)
    print(report)
    if not args.no_docs:
        write_section(HEADING, "wide_vs_evidently", report)


if __name__ == "__main__":
    main()
