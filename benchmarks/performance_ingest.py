"""Model performance: 1,000,000 predictions and their labels through the API, against the
same metrics by scikit-learn on the joined DataFrame in one process.

Run from the repository root: ``uv run python benchmarks/performance_ingest.py [--quick]``
(``make benchmark-performance``, ``QUICK=1`` for 100,000 rows; ``--rows N`` any size;
``--no-docs`` leaves ``docs/benchmarks.md`` alone; a quick run never writes it).

Predictions with ten class probabilities go to ``POST .../predictions`` in Arrow batches of
10,000 rows (the server's default row limit), then their labels to ``POST .../ground-truth``
in prediction-time order (how late labels arrive), then ``GET .../performance?window=day``
reads the daily windows. The backend is a separate uvicorn process on SecantusDB. The CPU
time of each process per phase says where the time went.

Then, with 10,000 labels of one day held back: posting them (the in-request window update)
against a full recomputation: the recount job's own pass over the model
(``performance/recount.py``, what repairs windows), and, stricter, a pass over that day only
(its predictions and labels read from the database, its metrics computed with the same code).
The windows the recount writes must equal the incremental ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
import numpy as np
import pandas as pd
import pyarrow as pa
from drift_backend.devstack.services import free_port, start_backend
from drift_backend.performance import recount, repository, stored
from drift_backend.performance.columns import decode_joined, decode_predictions
from drift_backend.performance.metrics import classification_metrics
from drift_backend.performance.windows import Part, classification_stats, hour_keys, increments
from pymongo import AsyncMongoClient
from sklearn import metrics as skm

from benchmarks._common import ARROW
from benchmarks._docs import write_section
from benchmarks._harness import machine, register, stack

HEADING = "## Model performance: 1,000,000 predictions and labels vs scikit-learn"
DATABASE = "drift_benchmark_performance"
CLASSES = [str(k) for k in range(10)]
BATCH = 10_000
DAYS = 10
START = datetime(2026, 3, 2, tzinfo=UTC)
LATE_DAY = 4  # the day whose 10,000 labels are held back
LATE = 10_000
FULL = 1_000_000
PACKAGES = ("fastapi", "uvicorn", "pyarrow", "pymongo", "scikit-learn", "secantusdb")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Data:
    ids: np.ndarray  # str
    times: np.ndarray  # datetime64[ms], sorted
    proba: np.ndarray  # rows x 10, float64
    y_pred: np.ndarray  # str
    y_true: np.ndarray  # str
    label_times: np.ndarray  # datetime64[ms]


def make_data(rows: int, seed: int = 7) -> Data:
    """Calibrated ten-class probabilities (a softmax of random logits); the label drawn from
    them, so accuracy is about what the probabilities promise (~0.6)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.6, size=(rows, len(CLASSES)))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    u = rng.random(rows)
    truth = np.minimum((proba.cumsum(axis=1) < u[:, None]).sum(axis=1), len(CLASSES) - 1)
    offsets = np.sort(rng.integers(0, DAYS * 86_400_000, rows))
    times = np.datetime64(START.replace(tzinfo=None), "ms") + offsets.astype("timedelta64[ms]")
    lags = rng.integers(3_600_000, 3 * 86_400_000, rows).astype("timedelta64[ms]")
    labels = np.array(CLASSES)
    return Data(
        ids=np.array([f"p{i:08d}" for i in range(rows)]),
        times=times,
        proba=proba,
        y_pred=labels[proba.argmax(axis=1)],
        y_true=labels[truth],
        label_times=times + lags,
    )


def prediction_table(data: Data, rows: slice) -> pa.Table:
    columns: dict[str, Any] = {
        "id": pa.array(data.ids[rows]),
        "y_pred": pa.array(data.y_pred[rows]),
        "time": pa.array(data.times[rows]),
    }
    for k, cls in enumerate(CLASSES):
        columns[f"proba_{cls}"] = pa.array(data.proba[rows, k])
    return pa.table(columns)


def label_table(data: Data, index: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(data.ids[index]),
            "y_true": pa.array(data.y_true[index]),
            "time": pa.array(data.label_times[index]),
        }
    )


def held_back(data: Data) -> np.ndarray:
    """The positions of ``LATE`` predictions of day ``LATE_DAY``, whose labels come last."""
    start = np.datetime64(START.replace(tzinfo=None), "ms")
    day = (data.times - start).astype("timedelta64[D]").astype(np.int64)
    positions = np.flatnonzero(day == LATE_DAY)
    rng = np.random.default_rng(11)
    return np.sort(rng.choice(positions, size=min(LATE, len(positions)), replace=False))


# --- measuring -----------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / CLK_TCK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += proc_cpu(int(child))
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return total


@dataclass
class Phase:
    name: str
    rows: int
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


class Meter:
    """Wall time and CPU time per process of the phases of a run."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.phases: list[Phase] = []

    def _cpu(self) -> dict[str, float]:
        out = {name: proc_cpu(pid) for name, pid in self.pids.items()}
        out["client"] = time.process_time()
        return out

    async def run(self, name: str, rows: int, work: Callable[[], Any]) -> Any:
        before, t0 = self._cpu(), time.perf_counter()
        result = await work()
        seconds = time.perf_counter() - t0
        after = self._cpu()
        self.phases.append(Phase(name, rows, seconds, {k: after[k] - before[k] for k in after}))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
        return result


# --- ours: through the API -----------------------------------------------------------------------


async def post_batches(
    http: httpx2.AsyncClient, url: str, tables: Iterator[pa.Table], concurrency: int
) -> list[dict[str, Any]]:
    """POST each table as Arrow, ``concurrency`` requests at a time; the answers in order."""
    answers: list[dict[str, Any]] = []
    pending: list[asyncio.Task[httpx2.Response]] = []

    async def drain(upto: int) -> None:
        while len(pending) > upto:
            response = await pending.pop(0)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:500]}")
            answers.append(response.json())

    for table in tables:
        body = _ipc(table)
        pending.append(
            asyncio.create_task(http.post(url, content=body, headers={"content-type": ARROW}))
        )
        await drain(concurrency - 1)
    await drain(0)
    return answers


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


# --- scikit-learn on the joined DataFrame --------------------------------------------------------


def ece(proba: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() / len(truth) * abs(correct[mask].mean() - confidence[mask].mean())
    return total


def sklearn_daily(predictions: pd.DataFrame, labels: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Join on id, then per UTC day the metrics our daily windows carry."""
    joined = predictions.merge(labels, on="id", how="inner")
    joined["day"] = joined["time"].dt.floor("D")
    proba_cols = [f"proba_{c}" for c in CLASSES]
    out: dict[str, dict[str, Any]] = {}
    for day, part in joined.groupby("day"):
        y_true, y_pred = part["y_true"].to_numpy(), part["y_pred"].to_numpy()
        proba = part[proba_cols].to_numpy()
        truth = part["y_true"].astype(int).to_numpy()
        onehot = np.eye(len(CLASSES))[truth]
        metrics: dict[str, Any] = {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "roc_auc": skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro"),
            "log_loss": skm.log_loss(truth, proba, labels=list(range(len(CLASSES)))),
            "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
            "ece": ece(proba, truth),
            "confusion": skm.confusion_matrix(y_true, y_pred, labels=CLASSES),
        }
        for average in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, average=average, zero_division=0
            )
            metrics |= {f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f}
        out[pd.Timestamp(day).strftime("%Y-%m-%d")] = metrics
    return out


# --- a full recomputation of one day -------------------------------------------------------------


async def recompute_day(db: Any, experiment: str, model: str, day: datetime) -> dict[str, Any]:
    """The day's metrics from the stored batches, by the windows' own code: every predictions
    batch read (the day's recorded rows counted) and every label batch's joined rows (each
    id's newest label of a prediction of the day): what a recount of one day costs."""
    key = repository.model_key(experiment, model)
    start = np.datetime64(day, "ms")
    end = start + np.timedelta64(1, "D")
    n_predicted = 0
    newest: dict[str, tuple[str, str, np.ndarray]] = {}
    model_doc = await repository.get_model(db, experiment, model)
    assert model_doc is not None
    async for doc in stored.read(db, key, 0, int(model_doc["applied"])):
        if doc["kind"] == "p":
            batch = decode_predictions(doc["ids"], doc["data"], False, len(CLASSES))
            recorded = np.ones(len(batch.ids), dtype=bool)
            recorded[np.frombuffer(doc.get("dups") or b"", dtype="<i4")] = False
            n_predicted += int((recorded & (batch.times >= start) & (batch.times < end)).sum())
        elif doc.get("joined") is not None:
            joined = decode_joined(doc["joined"], False, len(CLASSES))
            assert joined.proba is not None
            for i in np.flatnonzero((joined.times >= start) & (joined.times < end)):
                newest[joined.ids[i]] = (joined.y_true[i], joined.y_pred[i], joined.proba[i])
    rows = list(newest.values())
    y_true = np.array([r[0] for r in rows], dtype=object)
    y_pred = np.array([r[1] for r in rows], dtype=object)
    proba = np.array([r[2] for r in rows])
    stats = classification_stats(y_true, y_pred, proba, CLASSES)
    metrics, _, _ = classification_metrics(stats, CLASSES)
    return {"n_predicted": n_predicted, "n_labelled": len(rows), "metrics": metrics}


# --- the window update alone --------------------------------------------------------------------


async def window_update(db: Any, experiment: str, data: Data, rows: np.ndarray) -> float:
    """Seconds to add ``rows``' labels to their hours, as a label batch's applier does once
    it has joined them to their predictions (``increments`` and ``add_to_windows``), into a
    scratch model's windows: the incremental update a recomputation would replace."""
    part = Part(
        keys=hour_keys(data.times[rows]),
        y_pred=data.y_pred[rows].astype(str).astype(object),
        y_true=data.y_true[rows].astype(str).astype(object),
        proba=data.proba[rows],
        lag=(data.label_times[rows] - data.times[rows]).astype(np.int64) / 1000,
        sign=1,
        first=np.ones(len(rows), dtype=bool),
    )
    t0 = time.perf_counter()
    found, lag_max = await asyncio.to_thread(increments, [part], False, CLASSES, 0.0)
    await repository.add_to_windows(db, experiment, "scratch", found, lag_max)
    return time.perf_counter() - t0


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    rows: int
    concurrency: int
    meter: Meter
    sklearn_seconds: float
    compare: dict[str, float]
    late_post: float
    update_alone: float
    late_get: float
    recompute: float
    recompute_rows: int
    recount: float
    recount_rows: int
    late_answer: dict[str, Any]
    windows: int
    load: tuple[tuple[float, float, float], tuple[float, float, float]]


async def run(
    args: argparse.Namespace, mongo_url: str, base: str, token: str, pids: dict[str, int]
) -> Result:
    load_before = os.getloadavg()
    data = make_data(args.rows)
    late = held_back(data)
    in_time = np.setdiff1d(np.arange(args.rows), late)
    print(f"data: {args.rows:,} rows, {len(late):,} held back", file=sys.stderr)
    _, (experiment,) = await register(base, token, ["bench-performance"])
    model = f"m-{uuid.uuid4().hex[:6]}"
    prefix = f"/api/v1/experiment/{experiment}"
    meter = Meter(pids)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=900) as http:

        def predictions() -> Iterator[pa.Table]:
            for start in range(0, args.rows, BATCH):
                yield prediction_table(data, slice(start, start + BATCH))

        def labels() -> Iterator[pa.Table]:
            for start in range(0, len(in_time), BATCH):
                yield label_table(data, in_time[start : start + BATCH])

        url = f"{prefix}/predictions?model={model}"
        pred_answers = await meter.run(
            "predictions", args.rows, lambda: post_batches(http, url, predictions(), args.conc)
        )
        assert sum(a["recorded"] for a in pred_answers) == args.rows, pred_answers[:2]
        url = f"{prefix}/ground-truth?model={model}"
        label_answers = await meter.run(
            "labels", len(in_time), lambda: post_batches(http, url, labels(), args.conc)
        )
        assert sum(a["labelled"] for a in label_answers) == len(in_time), label_answers[:2]
        end = START + timedelta(days=DAYS)
        params = {"model": model, "window": "day", "from": START.isoformat(), "to": end.isoformat()}

        async def daily() -> Any:
            return (await http.get(f"{prefix}/performance", params=params)).raise_for_status()

        answer = (await meter.run("daily windows", args.rows, daily)).json()
        assert len(answer["windows"]) == DAYS, answer["windows"][:1]

        # The late labels: one batch, then the day read again.
        t0 = time.perf_counter()
        late_answer = (
            (
                await http.post(
                    f"{prefix}/ground-truth?model={model}",
                    content=_ipc(label_table(data, late)),
                    headers={"content-type": ARROW},
                )
            )
            .raise_for_status()
            .json()
        )
        late_post = time.perf_counter() - t0
        t0 = time.perf_counter()
        after = (await daily()).json()
        late_get = time.perf_counter() - t0

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    day = (START + timedelta(days=LATE_DAY)).replace(tzinfo=None)
    t0 = time.perf_counter()
    day_pass = await recompute_day(client[DATABASE], experiment, model, day)
    recompute = time.perf_counter() - t0
    update_alone = await window_update(client[DATABASE], experiment, data, late)
    # The product's full recomputation: the recount job over the whole model. Its windows
    # replace the incremental ones, so reading them again checks the two agree.
    t0 = time.perf_counter()
    recounted = await recount.recount(client[DATABASE], experiment, model)
    recount_seconds = time.perf_counter() - t0
    await client.close()
    async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=900) as http:
        again = (await http.get(f"{prefix}/performance", params=params)).raise_for_status()

    # scikit-learn on the joined DataFrame, from the frames in memory.
    frame = pd.DataFrame(
        {"id": data.ids, "time": data.times, "y_pred": data.y_pred}
        | {f"proba_{c}": data.proba[:, k] for k, c in enumerate(CLASSES)}
    )
    label_frame = pd.DataFrame({"id": data.ids, "y_true": data.y_true})
    t0 = time.perf_counter()
    ours_sklearn = sklearn_daily(frame, label_frame)
    sklearn_seconds = time.perf_counter() - t0

    compare = agreement(after, ours_sklearn, day_pass)
    compare["recount vs incremental windows: any metric"] = windows_apart(after, again.json())
    return Result(
        rows=args.rows,
        concurrency=args.conc,
        meter=meter,
        sklearn_seconds=sklearn_seconds,
        compare=compare,
        late_post=late_post,
        update_alone=update_alone,
        late_get=late_get,
        recompute=recompute,
        recompute_rows=day_pass["n_predicted"],
        recount=recount_seconds,
        recount_rows=recounted.predictions,
        late_answer=late_answer,
        windows=len(after["windows"]),
        load=(load_before, os.getloadavg()),
    )


def agreement(
    answer: dict[str, Any], reference: dict[str, dict[str, Any]], recount: dict[str, Any]
) -> dict[str, float]:
    """The largest difference per metric between our daily windows (all labels in) and
    scikit-learn's, over the days; and the recount against the late day's window."""
    worst: dict[str, float] = {}
    for window in answer["windows"]:
        day = window["start"][:10]
        ref = reference[day]
        for name in ("accuracy", "f1_macro", "f1_weighted", "log_loss", "brier", "ece", "roc_auc"):
            ours = window["metrics"][name]["value"]
            worst[name] = max(worst.get(name, 0.0), abs(ours - float(ref[name])))
        cm = np.array(window["confusion_matrix"]["matrix"])
        order = [CLASSES.index(c) for c in window["confusion_matrix"]["labels"]]
        same = np.array_equal(cm, ref["confusion"][np.ix_(order, order)])
        worst["confusion matrix cells differing"] = worst.get(
            "confusion matrix cells differing", 0.0
        ) + (0.0 if same else float((cm != ref["confusion"][np.ix_(order, order)]).sum()))
        if day == (START + timedelta(days=LATE_DAY)).strftime("%Y-%m-%d"):
            worst["day pass vs window: accuracy"] = abs(
                recount["metrics"]["accuracy"].value - window["metrics"]["accuracy"]["value"]
            )
    return worst


def windows_apart(before: dict[str, Any], after: dict[str, Any]) -> float:
    """The largest difference of any metric value between two answers of the same days."""
    worst = 0.0
    for one, two in zip(before["windows"], after["windows"], strict=True):
        assert one["start"] == two["start"], (one, two)
        assert one["n_labelled"] == two["n_labelled"], (one, two)
        assert one["n_predicted"] == two["n_predicted"], (one, two)
        assert one["confusion_matrix"] == two["confusion_matrix"], (one, two)
        for name, metric in one["metrics"].items():
            a, b = metric.get("value"), two["metrics"][name].get("value")
            if a is None or b is None:
                assert a is b, (name, a, b)
                continue
            worst = max(worst, abs(float(a) - float(b)))
    return worst


# --- the report ----------------------------------------------------------------------------------


def report(result: Result, args: argparse.Namespace) -> str:
    ingest = sum(p.seconds for p in result.meter.phases)
    ratio = ingest / result.sklearn_seconds
    update_share = result.update_alone / result.recompute
    post_share = result.late_post / result.recompute
    recount_share = result.update_alone / result.recount
    names = ["client", "backend", "SecantusDB"]
    lines = [
        f"Machine: {machine(PACKAGES)}. Load average (1, 5, 15 min) before the run "
        f"{_load(result.load[0])}, after {_load(result.load[1])}. Run: "
        f"{_size(args, result.rows)}, {result.rows:,} predictions with 10 class "
        f"probabilities over {DAYS} days, Arrow batches of {BATCH:,} rows, {result.concurrency} "
        f"request(s) in flight; backend: uvicorn, 1 worker.",
        "",
        "| phase | rows | seconds | rows/s | CPU s: client | backend | SecantusDB |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for p in result.meter.phases:
        cpu = " | ".join(f"{p.cpu.get(n, 0.0):.1f}" for n in names)
        lines.append(
            f"| {p.name} | {p.rows:,} | {p.seconds:.1f} | {p.rows / p.seconds:,.0f} | {cpu} |"
        )
    lines += [
        f"| **ours: ingest + daily windows** | | **{ingest:.1f}** | | | | |",
        f"| scikit-learn on the joined DataFrame (merge + per-day metrics) | {result.rows:,} "
        f"| {result.sklearn_seconds:.1f} | | | | |",
        "",
        f"Late labels: {result.late_answer['received']:,} labels of one day (of its "
        f"{result.recompute_rows:,} predictions) in one batch: `POST .../ground-truth` "
        f"{result.late_post:.2f} s (labelled {result.late_answer['labelled']:,}), then the "
        f"daily windows read again {result.late_get:.2f} s. A full recomputation, the recount "
        f"job over the whole model (`performance/recount.py`: {result.recount_rows:,} "
        f"predictions read from their batches, every hour rewritten), {result.recount:.2f} s; "
        f"stricter, that day's metrics alone from the stored batches (every batch read, the "
        f"day's rows taken, metrics by the same code, nothing written) {result.recompute:.2f} s. "
        f"Of the `POST`, the window update alone (the rows' increments computed and added to "
        f"their hours, timed in-process on a scratch model) {result.update_alone:.2f} s; the "
        f"rest is storing the batch and joining the labels to their predictions.",
        "",
        "Agreement with scikit-learn over the days (largest absolute difference): "
        + ", ".join(f"{k} {v:.2g}" for k, v in result.compare.items())
        + ".",
        "",
        "Targets:",
        "",
        f"- ingest plus metrics within 3x of scikit-learn in memory: {ratio:.2f}x "
        f"({'met' if ratio <= 3 else 'MISSED'})",
        f"- updating a window after {result.late_answer['received']:,} late labels under 5 % "
        f"of a full recomputation: {100 * recount_share:.2f} % of the recount job's "
        f"({'met' if recount_share < 0.05 else 'MISSED'}); {100 * update_share:.1f} % of the "
        f"stricter one-day pass; the whole `POST` {100 * post_share:.0f} % of the one-day pass",
    ]
    return "\n".join(lines)


def _size(args: argparse.Namespace, rows: int) -> str:
    if args.quick:
        return "`quick`"
    return "`full`" if rows == FULL else f"`--rows {rows}` (the target's size is {FULL:,})"


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, docs untouched")
    parser.add_argument("--rows", type=int, default=None, help="predictions (and labels)")
    parser.add_argument("--concurrency", dest="conc", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    args.rows = args.rows or (100_000 if args.quick else FULL)
    with stack() as bench:
        env = bench.backend_env(
            DATABASE,
            DRIFT_LOG_LEVEL="warning",
            DRIFT_MONGODB_TIMEOUT_SECONDS="120",
            DRIFT_MAX_UPLOAD_BYTES=str(1 << 30),
        )
        backend = start_backend(free_port(), env, bench.work / "backend.log")
        pids = {"backend": backend.process.pid, "SecantusDB": bench.mongo.process.pid}
        try:
            token = bench.issuer.token("bench-user", expires_in=4 * 3600)
            result = asyncio.run(run(args, bench.mongo.url, backend.url, token, pids))
        finally:
            backend.stop()
    text = report(result, args)
    print(text)
    if not args.no_docs and not args.quick:
        write_section(HEADING, "performance_ingest", text)


if __name__ == "__main__":
    main()
