"""Server-side drift checks through the API against Evidently's DataDriftPreset and a scipy loop.

Run from the repository root: ``uv run python benchmarks/checks_vs_evidently.py [--quick]``.
Evidently is not a dependency of this project: the script runs it in its own virtual
environment, ``benchmarks/.venv-evidently/`` (created on first use with ``python -m venv`` and
``pip install`` of the pinned versions below), as a subprocess reading the same data from
Parquet. The client (this process), the backend (uvicorn), the worker and its statistics
processes, and SecantusDB all share this machine's cores. Results are printed and written to
``docs/benchmarks.md`` (only between this script's markers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
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
from scipy import stats as sps  # noqa: E402

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
    worker_label,
)
from benchmarks._docs import DOCS, write_section  # noqa: E402
from tests.support.jwt_issuer import JWTIssuer  # noqa: E402

HEADING = "## Server-side checks vs Evidently and a scipy loop"
DATABASE = "drift_benchmark_checks"
WORKER_PROCESSES = 2

N_NUM, N_CAT = 40, 10
NUM_COLS = [f"num_{i:02d}" for i in range(N_NUM)]
CAT_COLS = [f"cat_{i:02d}" for i in range(N_CAT)]
DRIFT_NUM = [NUM_COLS[i] for i in range(0, N_NUM, 5)]  # 8 columns, every distribution family
DRIFT_CAT = [CAT_COLS[0], CAT_COLS[5]]
INJECTED = set(DRIFT_NUM) | set(DRIFT_CAT)
SHIFT_SD = 0.3


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Per-column distributions, fixed by one seed, shared by reference and current."""

    num: list[tuple[str, float, float]]  # (family, location, scale)
    cat: list[tuple[list[str], np.ndarray[Any, Any]]]  # (labels, probabilities)


def design(seed: int = 7) -> Design:
    rng = np.random.default_rng(seed)
    num = [
        (FAMILIES[i % 4], float(rng.uniform(-5, 5)), float(rng.uniform(0.5, 3)))
        for i in range(N_NUM)
    ]
    cat = []
    for i in range(N_CAT):
        k = int(rng.integers(3, 13))
        cat.append(([f"c{i}_{j}" for j in range(k)], rng.dirichlet(np.full(k, 2.0))))
    return Design(num, cat)


def drifted_probabilities(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Changed proportions: 60% of the mass moved one category along (Jensen-Shannon
    distance 0.12 and 0.19 for the two drifted columns, against Evidently's default 0.1)."""
    q = 0.4 * p + 0.6 * np.roll(p, 1)
    return np.asarray(q / q.sum())


def frame(spec: Design, n: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for name, (family, loc, scale) in zip(NUM_COLS, spec.num, strict=True):
        values = draw(family, loc, scale, n, rng)
        if drift and name in DRIFT_NUM:
            values = values + SHIFT_SD * population_sd(family, scale)
        columns[name] = values
    for name, (labels, p) in zip(CAT_COLS, spec.cat, strict=True):
        probs = drifted_probabilities(p) if drift and name in DRIFT_CAT else p
        columns[name] = np.asarray(labels, dtype=object)[rng.choice(len(labels), n, p=probs)]
    return pd.DataFrame(columns)


# --- scipy loop ---------------------------------------------------------------------------------


def scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame, alpha: float = 0.05) -> set[str]:
    """KS per numerical column, chi-square on the contingency table per categorical column."""
    drifted = set()
    for name in NUM_COLS:
        if sps.ks_2samp(ref[name].to_numpy(), cur[name].to_numpy()).pvalue < alpha:
            drifted.add(name)
    for name in CAT_COLS:
        counts = pd.concat([ref[name].value_counts(), cur[name].value_counts()], axis=1).fillna(0)
        if sps.chi2_contingency(counts.to_numpy().T).pvalue < alpha:
            drifted.add(name)
    return drifted


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Results:
    e2e: list[float] = field(default_factory=list)
    check: list[float] = field(default_factory=list)
    scipy: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)
    evidently: dict[str, Any] = field(default_factory=dict)
    small_ref: list[float] = field(default_factory=list)
    big_ref: list[float] = field(default_factory=list)
    upload_1m: float = 0.0
    ours: Accuracy | None = None
    scipy_acc: Accuracy | None = None
    evidently_acc: Accuracy | None = None
    tests_used: str = ""
    memory_100k: Memory | None = None
    memory_end: Memory | None = None
    backend_peak: float = 0.0
    separate_worker: bool = False


def med(values: list[float]) -> float:
    return statistics.median(values)


def run_ours(api: Api, res: Results, ref: pd.DataFrame, cur: pd.DataFrame, repeats: int) -> None:
    warm = api.baseline(ref, "warm-up")
    api.check(cur, warm)  # the first check starts the worker's statistics processes
    report: dict[str, Any] = {}
    for i in range(repeats):

        def end_to_end(i: int = i) -> dict[str, Any]:
            return api.check(cur, api.baseline(ref, f"e2e-{i}"))

        elapsed, report = timed(end_to_end)
        res.e2e.append(elapsed)
        elapsed, report = timed(lambda: api.check(cur, warm))
        res.check.append(elapsed)
        print(f"  ours: e2e {res.e2e[-1]:.2f} s, check {res.check[-1]:.2f} s", file=sys.stderr)
    res.ours = Accuracy(set(report["drifted_features"]), INJECTED)
    res.tests_used = tests_used(report)


def run_scaling(api: Api, res: Results, spec: Design, repeats: int) -> None:
    cur = frame(spec, 10_000, 303, drift=True)
    small = api.baseline(frame(spec, 10_000, 301, drift=False), "ref-10k")
    big_ref = frame(spec, 1_000_000, 302, drift=False)
    t0 = time.perf_counter()
    big = api.baseline(big_ref, "ref-1m")
    res.upload_1m = time.perf_counter() - t0
    api.check(cur, small)
    api.check(cur, big)
    for _ in range(repeats):  # interleaved, so drift in the machine hits both alike
        res.small_ref.append(timed(lambda: api.check(cur, small))[0])
        res.big_ref.append(timed(lambda: api.check(cur, big))[0])
    print(
        f"  scaling: 10k {med(res.small_ref):.3f} s, 1M {med(res.big_ref):.3f} s", file=sys.stderr
    )


def render(res: Results, args: argparse.Namespace) -> str:
    ours_e2e, ours_check = med(res.e2e), med(res.check)
    ev, sp, engine = med(res.evidently["times"]), med(res.scipy), med(res.engine)
    small, big = med(res.small_ref), med(res.big_ref)
    ratio_scale = big / small
    assert res.ours is not None
    assert res.scipy_acc is not None
    assert res.evidently_acc is not None
    assert res.memory_100k is not None
    assert res.memory_end is not None
    main_label = "worker process" if res.separate_worker else "backend process (embedded worker)"
    worker = worker_label(res.separate_worker, WORKER_PROCESSES)

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = [
        f"Machine: {machine(res.evidently)}. Run: `{'quick' if args.quick else 'full'}` "
        f"({args.repeats} repeats, medians; Evidently {args.ev_repeats} repeats). "
        f"Worker: {worker}.",
        "",
        "100k-row reference and 100k-row current batch, 50 columns (40 numerical, 10 "
        "categorical); seconds, median:",
        "",
        "| what | seconds | ours, per check, is faster by | ours, with the baseline upload, "
        "is faster by |",
        "|---|--:|--:|--:|",
        f"| ours, per check: upload the current batch + check + report (API, Arrow; the "
        f"baseline stored once before) | {ours_check:.2f} | | |",
        f"| ours, with the baseline: upload the reference + upload the current batch + check "
        f"+ report (API, Arrow) | {ours_e2e:.2f} | | |",
        f"| Evidently `DataDriftPreset` (in-process, no I/O) | {ev:.2f} | {ev / ours_check:.1f}x "
        f"| {ev / ours_e2e:.1f}x |",
        f"| scipy loop: `ks_2samp` x 40 + `chi2_contingency` x 10 (in-process) | {sp:.2f} "
        f"| {sp / ours_check:.1f}x | {sp / ours_e2e:.1f}x |",
        f"| ours, statistics only in-process (profile the reference + `run_check`, no I/O) "
        f"| {engine:.2f} | | |",
        "",
        "Check time, 10k-row current batch (ours, through the API, median):",
        "",
        "| reference | check seconds |",
        "|---|--:|",
        f"| 10k rows | {small:.3f} |",
        f"| 1M rows | {big:.3f} |",
        f"| ratio 1M / 10k | {ratio_scale:.2f} |",
        "",
        f"Uploading the 1M-row reference (about {res.upload_1m:.0f} s) is not part of the "
        "comparison.",
        "",
        "Peak resident memory (VmHWM):",
        "",
        f"- after the 100k-row checks: {res.memory_100k.text(main_label)}",
        f"- at the end (after the 1M-row reference): {res.memory_end.text(main_label)}",
    ]
    if res.separate_worker:
        lines.append(
            f"- backend process (parses uploads, builds profiles): {res.backend_peak:.0f} MiB"
        )
    lines += [
        "",
        f"Accuracy against the injected drift ({len(INJECTED)} columns: "
        f"{len(DRIFT_NUM)} numerical shifted {SHIFT_SD} sd, {len(DRIFT_CAT)} categorical with "
        "changed proportions):",
        "",
        f"- ours (default `auto` tests: {res.tests_used}): {res.ours.text()}",
        f"- Evidently (its defaults): {res.evidently_acc.text()}",
        f"- scipy loop (p < 0.05 per column, no correction): {res.scipy_acc.text()}",
        "",
        "Targets (end-to-end through the API, upload and check, Arrow; per check, and also "
        "counting the one-time baseline upload):",
        "",
        f"- at least 10x faster than Evidently: per check {ev / ours_check:.1f}x, "
        f"{verdict(ev / ours_check >= 10)}; with the baseline upload {ev / ours_e2e:.1f}x, "
        f"{verdict(ev / ours_e2e >= 10)}",
        f"- at least 2x faster than the scipy loop: per check {sp / ours_check:.1f}x, "
        f"{verdict(sp / ours_check >= 2)}; with the baseline upload {sp / ours_e2e:.1f}x, "
        f"{verdict(sp / ours_e2e >= 2)} (our statistics in-process, like the loop: "
        f"{sp / engine:.1f}x)",
        f"- 1M-row reference check at most 1.5x the 10k-row one: {ratio_scale:.2f}x, "
        f"{verdict(ratio_scale <= 1.5)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few minutes)")
    parser.add_argument("--no-docs", action="store_true", help=f"do not update {DOCS.name}")
    parser.add_argument(
        "--embedded-worker",
        action="store_true",
        help="run the worker inside the backend even if `drift-monitor-server worker` exists",
    )
    args = parser.parse_args()
    args.repeats, args.ev_repeats = (3, 1) if args.quick else (5, 3)
    rows = 100_000
    spec = design()
    ref, cur = frame(spec, rows, 101, drift=False), frame(spec, rows, 102, drift=True)
    res = Results(separate_worker=not args.embedded_worker and has_worker_command())

    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp_name, JWTIssuer() as issuer:
        tmp = Path(tmp_name)
        print("Evidently ...", file=sys.stderr)
        res.evidently = run_evidently(ref, cur, args.ev_repeats, tmp, NUM_COLS, CAT_COLS)
        res.evidently_acc = Accuracy(set(res.evidently["drifted"]), INJECTED)
        print(f"  Evidently: {res.evidently['times']}", file=sys.stderr)

        print("scipy loop ...", file=sys.stderr)
        scipy_loop(ref.head(1000), cur.head(1000))  # warm-up
        for _ in range(args.repeats):
            elapsed, drifted = timed(lambda: scipy_loop(ref, cur))
            res.scipy.append(elapsed)
        res.scipy_acc = Accuracy(drifted, INJECTED)
        print(f"  scipy: {res.scipy}", file=sys.stderr)

        print("our statistics in-process ...", file=sys.stderr)
        ref_table = pa.Table.from_pandas(ref, preserve_index=False)
        cur_table = pa.Table.from_pandas(cur, preserve_index=False)
        for _ in range(args.repeats):
            # Like the scipy loop: both samples in memory, no HTTP, no database, no queue.
            elapsed, _ = timed(
                lambda: run_check(build_profile(ref_table), cur_table, DriftConfig())
            )
            res.engine.append(elapsed)
        print(f"  engine: {res.engine}", file=sys.stderr)

        mongo = start_mongodb(free_port(), tmp / "db", log_path=tmp / "secantus.log")
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
            backend = start_backend(free_port(), env, tmp / "backend.log")
            if res.separate_worker:
                worker = start_worker(env, tmp / "worker.log", WORKER_PROCESSES)
            watched = (worker or backend).process.pid
            api = Api(backend.url, issuer.token("bench-user", expires_in=7200))
            print("ours ...", file=sys.stderr)
            run_ours(api, res, ref, cur, args.repeats)
            res.memory_100k = Memory.of(watched)
            print("10k vs 1M reference ...", file=sys.stderr)
            run_scaling(api, res, spec, args.repeats)
            res.memory_end = Memory.of(watched)
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
        write_section(HEADING, "checks_vs_evidently", report)


if __name__ == "__main__":
    main()
