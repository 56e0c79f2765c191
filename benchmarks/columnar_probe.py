"""Probe (issue 10): a columnar design for model-performance ingest, measured before anyone
builds it. Not a product change: nothing under ``backend/`` uses it.

Run from the repository root: ``uv run python benchmarks/columnar_probe.py [--rows N]``
(default 200,000; ``--layout`` the stored form used past phase 1, ``--compare`` the others
inserted in phase 1, ``--coalesce K`` the applier writes the hours once per K batches). It
prints a report and writes no file. It starts its own SecantusDB (data on disk in a temporary directory) and
talks to it with PyMongo directly, no HTTP and no backend process.

The design: one document per accepted predictions batch (``prediction_batches``: the
batch's columns as Arrow IPC bytes, the ids apart so a new applier can read them alone) and
one per labels batch (``label_batches``), both insert-only. One applier per model adds the
batches to the hourly windows (``performance_windows``, through the product's
``add_to_windows``, with increments from the product's windows code), keeping in memory a
sorted array of the ids' 64-bit hashes -> position, and each position's current label; a
label batch fetches only the prediction batches its rows are in (LRU-cached).

Phases, each timed with the CPU seconds of SecantusDB and of this script: the prediction
batches inserted (each stored form tried, on separate models), the label batches
inserted, the predictions then the labels applied, a cold start (the index rebuilt from the
stored batches), the daily windows read by the product's ``service.performance``, and (6)
an hour document's read + replace and the read of all hours, as stored now and as one
packed array; then scikit-learn on the joined DataFrame (``performance_ingest.sklearn_daily``) on the same
data (``performance_ingest.make_data``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bson
import numpy as np
import pandas as pd
import pyarrow as pa
from bson.binary import Binary
from drift_backend.devstack.services import free_port, start_mongodb
from drift_backend.performance import repository, service
from drift_backend.performance.windows import (
    Labelled,
    Window,
    add_into,
    classification_stats,
    flatten,
    hour_keys,
    label_increments,
)
from drift_backend.store.database import Database, connect, ensure_indexes

from benchmarks.performance_ingest import (
    BATCH,
    CLASSES,
    DAYS,
    LATE_DAY,
    START,
    Data,
    _ipc,
    held_back,
    label_table,
    make_data,
    prediction_table,
    proc_cpu,
    sklearn_daily,
)

DATABASE = "drift_columnar_probe"
EXPERIMENT = "probe"
PREDICTION_BATCHES = "prediction_batches"
LABEL_BATCHES = "label_batches"
APPLIERS = "performance_appliers"
#: Prediction batches a label batch may find in memory (labels mostly arrive in prediction
#: order, so a batch needs one or two; a late day's labels need that day's).
CACHE = 8
PROBA = [f"proba_{c}" for c in CLASSES]
RULES = service.Rules(min_coverage=0.5, tolerance=0.05, alpha=0.05)


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    db_cpu: float
    script_cpu: float
    note: str = ""


@dataclass
class Meter:
    db_pid: int
    phases: list[Phase] = field(default_factory=list)

    async def run(self, name: str, work: Callable[[], Awaitable[Any]], note: str = "") -> Any:
        db0, me0, t0 = proc_cpu(self.db_pid), time.process_time(), time.perf_counter()
        result = await work()
        phase = Phase(
            name,
            time.perf_counter() - t0,
            proc_cpu(self.db_pid) - db0,
            time.process_time() - me0,
            note,
        )
        self.phases.append(phase)
        print(
            f"{name}: {phase.seconds:.2f} s, CPU SecantusDB {phase.db_cpu:.2f} s, "
            f"script {phase.script_cpu:.2f} s",
            file=sys.stderr,
        )
        return result


# --- the stored batches --------------------------------------------------------------------------


def batch_key(model: str, seq: int) -> str:
    # Zero-padded: the primary index's order is the batches' order.
    return f"{repository.model_key(EXPERIMENT, model)}:{seq:010d}"


def model_range(model: str) -> dict[str, Any]:
    """The ``_id`` range of a model's batches: the primary index serves it."""
    prefix = repository.model_key(EXPERIMENT, model) + ":"
    return {"_id": {"$gte": prefix, "$lt": prefix[:-1] + ";"}}


def ipc(table: pa.Table, codec: str | None) -> bytes:
    options = pa.ipc.IpcWriteOptions(compression=codec)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def read_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


@dataclass(frozen=True)
class Layout:
    """How a prediction batch's columns are stored: ``ipc`` all in Arrow IPC (``codec``
    its buffer compression, or none); ``matrix`` the probabilities as one packed float64
    array beside an IPC of the other columns."""

    name: str
    codec: str | None
    matrix: bool = False


LAYOUTS = {
    "ipc": Layout("ipc", None),
    "ipc-lz4": Layout("ipc-lz4", "lz4"),
    "ipc-zstd": Layout("ipc-zstd", "zstd"),
    "matrix": Layout("matrix", None, matrix=True),
    "matrix-lz4": Layout("matrix-lz4", "lz4", matrix=True),
}


def prediction_doc(model: str, seq: int, body: bytes, layout: Layout) -> dict[str, Any]:
    """What the backend would store for a request body: parsed, and written back as the
    id column apart (a new applier reads only that) and the rest."""
    table = read_ipc(body)
    doc: dict[str, Any] = {
        "_id": batch_key(model, seq),
        "seq": seq,
        "n": table.num_rows,
        "layout": layout.name,
        "ids": Binary(ipc(table.select(["id"]), layout.codec)),
        "created_at": datetime.now(UTC),
    }
    if layout.matrix:
        proba = np.column_stack([table[name].to_numpy() for name in PROBA])
        doc["cols"] = Binary(ipc(table.select(["y_pred", "time"]), layout.codec))
        doc["proba"] = Binary(np.ascontiguousarray(proba, dtype="<f8").tobytes())
    else:
        doc["cols"] = Binary(ipc(table.select(["y_pred", "time", *PROBA]), layout.codec))
    return doc


def label_doc(model: str, seq: int, body: bytes) -> dict[str, Any]:
    table = read_ipc(body)
    return {
        "_id": batch_key(model, seq),
        "seq": seq,
        "n": table.num_rows,
        "data": Binary(ipc(table, None)),
        "created_at": datetime.now(UTC),
    }


@dataclass
class Predictions:
    """One decoded prediction batch."""

    ids: np.ndarray  # object (str)
    y_pred: np.ndarray  # object (str)
    times: np.ndarray  # datetime64[ms]
    proba: np.ndarray  # rows x classes


def decode_predictions(doc: dict[str, Any]) -> Predictions:
    cols = read_ipc(doc["cols"])
    if "proba" in doc:
        proba = np.frombuffer(doc["proba"], dtype="<f8").reshape(doc["n"], len(CLASSES))
    else:
        proba = np.column_stack([cols[name].to_numpy() for name in PROBA])
    return Predictions(
        ids=decode_ids(doc["ids"]),
        # Fixed-width strings, not objects: numpy sorts (np.unique) them far faster.
        y_pred=cols["y_pred"].to_numpy(zero_copy_only=False).astype(str),
        times=cols["time"].to_numpy().astype("datetime64[ms]"),
        proba=proba,
    )


def decode_ids(data: bytes) -> np.ndarray:
    return np.asarray(read_ipc(data)["id"].to_numpy(zero_copy_only=False))


def hash_ids(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of the ids (SipHash): the index holds these, not the strings; a match
    is checked against the batch's own id when the batch is read."""
    return np.asarray(pd.util.hash_array(ids.astype(object), categorize=False))


# --- the applier ---------------------------------------------------------------------------------


@dataclass
class Counts:
    fetched: int = 0
    cache_hits: int = 0
    hours_written: int = 0
    labelled: int = 0
    changed: int = 0
    unchanged: int = 0
    unknown: int = 0
    duplicates: int = 0
    increment_seconds: float = 0.0
    write_seconds: float = 0.0


class Applier:
    """The one writer of a model's windows: batches in order, an index of the ids."""

    def __init__(self, db: Database, model: str, coalesce: int = 1, cache: int = CACHE) -> None:
        self.db = db
        self.cache_size = cache
        self.model = model
        self.coalesce = coalesce
        self.pending: dict[int, dict[str, float | int]] = {}
        self.pending_lag: dict[int, float] = {}
        self.pending_seq: dict[str, int] = {}
        self.pending_batches = 0
        self.hashes = np.empty(0, dtype=np.uint64)  # sorted
        self.where = np.empty(0, dtype=np.int64)  # dense position of each sorted hash
        self.offsets: list[int] = [0]  # dense position of each prediction batch's row 0
        self.seqs: list[int] = []  # the batch of each entry of offsets
        self.label = np.empty(0, dtype=np.int32)  # code of the current label, -1 none
        self.label_time = np.empty(0, dtype="datetime64[ms]")
        self.label_names: list[str] = []
        self.label_codes: dict[str, int] = {}
        self.cache: OrderedDict[int, Predictions] = OrderedDict()
        self.counts = Counts()

    # the index

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Dense positions of the hashes, -1 where absent."""
        if not len(self.hashes):
            return np.full(len(hashes), -1, dtype=np.int64)
        at = np.searchsorted(self.hashes, hashes)
        at = np.minimum(at, len(self.hashes) - 1)
        return np.where(self.hashes[at] == hashes, self.where[at], -1)

    def extend(self, seq: int, hashes: np.ndarray, keep: np.ndarray) -> None:
        """Add a batch's rows (``keep``: the new ids among them) at the next positions."""
        start = self.offsets[-1]
        self.seqs.append(seq)
        self.offsets.append(start + len(hashes))
        positions = start + np.flatnonzero(keep)
        hashes = hashes[keep]
        order = np.argsort(hashes)
        merged_h = np.concatenate([self.hashes, hashes[order]])
        merged_w = np.concatenate([self.where, positions[order]])
        # Two sorted runs: a stable sort (timsort) merges them in linear time.
        order = np.argsort(merged_h, kind="stable")
        self.hashes, self.where = merged_h[order], merged_w[order]
        self.label = np.concatenate([self.label, np.full(len(keep), -1, dtype=np.int32)])
        self.label_time = np.concatenate(
            [self.label_time, np.zeros(len(keep), dtype="datetime64[ms]")]
        )

    def new_rows(self, hashes: np.ndarray) -> np.ndarray:
        """The rows whose id is not indexed yet (the first of an id wins, in the batch too).
        A found hash would be a re-sent id or (1 in 2^64 per pair) a collision, which the
        product would tell apart by reading that batch's ids."""
        fresh = self.lookup(hashes) < 0
        _, first = np.unique(hashes, return_index=True)
        once = np.zeros(len(hashes), dtype=bool)
        once[first] = True
        return fresh & once

    # batches

    async def fetch(self, seq: int) -> Predictions:
        if seq in self.cache:
            self.counts.cache_hits += 1
            self.cache.move_to_end(seq)
            return self.cache[seq]
        doc = await self.db[PREDICTION_BATCHES].find_one({"_id": batch_key(self.model, seq)})
        assert doc is not None, seq
        self.counts.fetched += 1
        return self.remember(seq, decode_predictions(doc))

    def remember(self, seq: int, batch: Predictions) -> Predictions:
        self.cache[seq] = batch
        self.cache.move_to_end(seq)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return batch

    async def add(
        self, increments: dict[int, Any], lag_max: dict[int, float] | None, kind: str, seq: int
    ) -> None:
        """Add a batch's increments; written once ``coalesce`` batches are in (an applier
        that is behind writes each hour once for all it catches up on)."""
        t0 = time.perf_counter()
        if not self.pending_batches:
            self.pending = dict(increments)  # the caller's fresh dicts: no copy needed
        else:
            for hour, inc in increments.items():
                total = self.pending.setdefault(hour, {})
                for path, value in inc.items():
                    total[path] = total.get(path, 0) + value
        for hour, longest in (lag_max or {}).items():
            self.pending_lag[hour] = max(self.pending_lag.get(hour, 0.0), longest)
        self.pending_seq[kind] = seq
        self.pending_batches += 1
        self.counts.increment_seconds += time.perf_counter() - t0
        if self.pending_batches >= self.coalesce:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending_batches:
            return
        t0 = time.perf_counter()
        await repository.add_to_windows(
            self.db, EXPERIMENT, self.model, self.pending, self.pending_lag
        )
        # Where a restarted applier goes on from (not atomic with the windows: see the
        # report's idempotency note).
        await self.db[APPLIERS].update_one(
            {"_id": repository.model_key(EXPERIMENT, self.model)},
            {"$set": self.pending_seq},
            upsert=True,
        )
        self.counts.write_seconds += time.perf_counter() - t0
        self.counts.hours_written += len(self.pending)
        self.pending, self.pending_lag, self.pending_seq = {}, {}, {}
        self.pending_batches = 0

    async def apply_predictions(self, doc: dict[str, Any]) -> None:
        seq = doc["seq"]
        batch = decode_predictions(doc)
        t0 = time.perf_counter()
        hashes = hash_ids(batch.ids)
        keep = self.new_rows(hashes)
        self.counts.duplicates += int((~keep).sum())
        increments = service._prediction_increments(
            hour_keys(batch.times[keep]), batch.y_pred[keep], batch.proba[keep], CLASSES
        )
        self.extend(seq, hashes, keep)
        self.remember(seq, batch)
        self.counts.increment_seconds += time.perf_counter() - t0
        await self.add(increments, None, "predictions", seq)

    def code(self, labels: np.ndarray) -> np.ndarray:
        names, inverse = np.unique(labels, return_inverse=True)
        for name in names:
            if name not in self.label_codes:
                self.label_codes[name] = len(self.label_names)
                self.label_names.append(str(name))
        table = np.array([self.label_codes[n] for n in names], dtype=np.int32)
        return table[inverse]

    def join(self, doc: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A label batch's known rows: their dense positions, label codes and times (the
        last of an id in the batch wins)."""
        table = read_ipc(doc["data"])
        ids = table["id"].to_numpy(zero_copy_only=False)
        hashes = hash_ids(ids)
        # the last occurrence of each id
        _, last = np.unique(hashes[::-1], return_index=True)
        rows = np.sort(len(hashes) - 1 - last)
        dense = self.lookup(hashes[rows])
        known = dense >= 0
        self.counts.unknown += int((~known).sum())
        rows = rows[known]
        codes = self.code(table["y_true"].to_numpy(zero_copy_only=False)[rows])
        times = table["time"].to_numpy().astype("datetime64[ms]")[rows]
        return dense[known], codes, times

    async def apply_labels(self, doc: dict[str, Any]) -> None:
        dense, codes, times = self.join(doc)
        old = self.label[dense]
        applied = old != codes
        dense, codes, times, old = dense[applied], codes[applied], times[applied], old[applied]
        self.counts.unchanged += int((~applied).sum())
        # The predictions of these rows, from their batches.
        batch_index = np.searchsorted(self.offsets, dense, side="right") - 1
        n = len(dense)
        y_pred = np.empty(n, dtype=object)
        proba = np.empty((n, len(CLASSES)))
        ptimes = np.empty(n, dtype="datetime64[ms]")
        ids = np.empty(n, dtype=object)
        for b in np.unique(batch_index):
            mask = batch_index == b
            batch = await self.fetch(self.seqs[b])
            rows = dense[mask] - self.offsets[b]
            y_pred[mask], proba[mask], ptimes[mask] = (
                batch.y_pred[rows],
                batch.proba[rows],
                batch.times[rows],
            )
            ids[mask] = batch.ids[rows]
        t0 = time.perf_counter()
        first = old < 0
        self.counts.labelled += int(first.sum())
        self.counts.changed += int((~first).sum())
        names = np.array(self.label_names)
        y_pred = y_pred.astype(str)
        hours = hour_keys(ptimes)
        parts = [(hours, names[codes], y_pred, proba, lags(ptimes, times), 1, first)]
        if (~first).any():
            was = ~first
            old_lags = lags(ptimes[was], self.label_time[dense[was]])
            parts.append((hours[was], names[old[was]], y_pred[was], proba[was], old_lags, -1, None))
        increments, lag_max = vector_increments(parts)
        self.label[dense] = codes
        self.label_time[dense] = times
        self.counts.increment_seconds += time.perf_counter() - t0
        await self.add(increments, lag_max, "labels", doc["seq"])


def lags(prediction: np.ndarray, label: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(0.0, (label - prediction).astype(np.int64) / 1000))


def vector_increments(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, Any]],
) -> tuple[dict[int, dict[str, float | int]], dict[int, float]]:
    """What ``windows.label_increments`` computes, from columns instead of one ``Labelled``
    per row: per (hour, sign) the product's ``classification_stats``, the labelled count
    and the lags."""
    totals: dict[int, dict[str, Any]] = {}
    lag_max: dict[int, float] = {}
    for hours, y_true, y_pred, proba, lag, sign, first in parts:
        order = np.argsort(hours, kind="stable")
        found, starts = np.unique(hours[order], return_index=True)
        bounds = [*starts[1:], len(order)]
        for hour, lo, hi in zip(found, starts, bounds, strict=True):
            rows = order[lo:hi]
            total = totals.setdefault(int(hour), {})
            stats = classification_stats(y_true[rows], y_pred[rows], proba[rows], CLASSES, sign)
            if "s" in total:
                add_into(total, {"s": stats})
            else:
                total["s"] = stats  # the hour's first part: nothing to add to
            n_lab = int(first[rows].sum()) if first is not None else 0
            add_into(total, {"n_lab": sign * n_lab, "lag_sum": sign * float(lag[rows].sum())})
            if sign > 0:
                lag_max[int(hour)] = max(lag_max.get(int(hour), 0.0), float(lag[rows].max()))
    return {hour: flatten(total) for hour, total in totals.items()}, lag_max


# --- the hour documents: fields or one packed array -----------------------------------------------

#: A ten-class hour as one dense float64 array: ROC score histograms (classes x 1001 bins x
#: positive/negative), the CBPE score counts (classes x 101 bins x chosen/other), the
#: confusion matrix, the calibration bins (10 x n, confidence, correct) and the scalars.
PACKED = 10 * 1001 * 2 + 10 * 101 * 2 + 10 * 10 + 10 * 3 + 10
PROBE_WRITES = 40


async def packed_hours(meter: Meter, db: Database, model: str) -> dict[str, float]:
    """What one hour write and the daily read cost with the hours as they are (thousands of
    fields, what ``_swap`` reads and replaces) against the same hours as one packed array
    (what a sole writer could keep): the same read + replace round trips on each."""
    query = {"experiment_id": EXPERIMENT, "model": model}
    hours = [d async for d in db[repository.WINDOWS].find(query).sort("start", 1)]
    fields = [len(flatten(d)) for d in hours]
    chosen = [d["_id"] for d in hours[: PROBE_WRITES // 2]] * 2
    packed = "packed_windows"
    rng = np.random.default_rng(3)
    await db[packed].insert_many(
        [
            {
                "_id": d["_id"],
                "experiment_id": EXPERIMENT,
                "model": model,
                "start": d["start"],
                "v": 1,
                "a": Binary(rng.integers(0, 50, PACKED).astype("<f8").tobytes()),
            }
            for d in hours
        ]
    )
    increment = np.ones(PACKED)

    async def swap_fields() -> None:
        for key in chosen:
            doc = await db[repository.WINDOWS].find_one({"_id": key})
            assert doc is not None
            doc["v"] += 1
            await db[repository.WINDOWS].replace_one({"_id": key, "v": doc["v"] - 1}, doc)

    async def swap_packed() -> None:
        for key in chosen:
            doc = await db[packed].find_one({"_id": key})
            assert doc is not None
            values = np.frombuffer(doc["a"], dtype="<f8") + increment
            doc["a"], doc["v"] = Binary(values.tobytes()), doc["v"] + 1
            await db[packed].replace_one({"_id": key, "v": doc["v"] - 1}, doc)

    async def read_fields() -> None:
        [d async for d in db[repository.WINDOWS].find(query)]

    async def read_packed() -> None:
        total = np.zeros(PACKED)
        async for d in db[packed].find(query):
            total += np.frombuffer(d["a"], dtype="<f8")

    out: dict[str, float] = {
        "hours": len(hours),
        "fields per hour (mean)": float(np.mean(fields)),
        "fields per hour (max)": float(max(fields)),
    }
    for name, work in (
        (f"hour writes, fields ({len(chosen)})", swap_fields),
        (f"hour writes, packed ({len(chosen)})", swap_packed),
        ("all hours read, fields", read_fields),
        ("all hours read, packed", read_packed),
    ):
        await meter.run(f"6. probe: {name}", work)
    return out


# --- the run -------------------------------------------------------------------------------------


def bodies(data: Data, late: np.ndarray, order: str) -> tuple[list[bytes], list[bytes]]:
    """The request bodies a client would send: predictions in order, then the labels with
    the held-back day's last; ``order`` of the others: ``prediction`` time (as
    performance_ingest sends them), ``label`` time (as they become known: a batch then
    spans up to three days of predictions) or ``random``."""
    rows = len(data.ids)
    in_time = np.setdiff1d(np.arange(rows), late)
    if order == "label":
        in_time = in_time[np.argsort(data.label_times[in_time], kind="stable")]
    elif order == "random":
        in_time = np.random.default_rng(5).permutation(in_time)
    predictions = [_ipc(prediction_table(data, slice(s, s + BATCH))) for s in range(0, rows, BATCH)]
    labels = [
        _ipc(label_table(data, in_time[s : s + BATCH])) for s in range(0, len(in_time), BATCH)
    ]
    labels.append(_ipc(label_table(data, late)))
    return predictions, labels


async def next_seq(db: Database, model: str, kind: str) -> int:
    """The batch's number in the model's order: one counter per model."""
    doc = await db[APPLIERS].find_one_and_update(
        {"_id": "seq:" + repository.model_key(EXPERIMENT, model)},
        {"$inc": {kind: 1}},
        upsert=True,
        return_document=True,
    )
    assert doc is not None
    return int(doc[kind])


async def insert_batches(
    db: Database,
    collection: str,
    model: str,
    docs: Callable[[int, bytes], dict[str, Any]],
    payloads: list[bytes],
    kind: str,
    sizes: list[dict[str, int]],
) -> None:
    for body in payloads:
        seq = await next_seq(db, model, kind)
        doc = docs(seq, body)
        sizes.append(
            {
                "bson": len(bson.encode(doc)),
                **{k: len(v) for k, v in doc.items() if isinstance(v, bytes)},
            }
        )
        await db[collection].insert_one(doc)


async def cold_start(db: Database, model: str) -> Applier:
    """A new applier: the index from the stored prediction batches' ids, the current labels
    from the label batches, as the applier had them."""
    fresh = Applier(db, model)
    hashes, positions = [], []
    cursor = db[PREDICTION_BATCHES].find(model_range(model), {"ids": 1, "seq": 1, "n": 1})
    async for doc in cursor.sort("_id", 1):
        start = fresh.offsets[-1]
        h = hash_ids(decode_ids(doc["ids"]))
        fresh.seqs.append(doc["seq"])
        fresh.offsets.append(start + len(h))
        hashes.append(h)
        positions.append(start + np.arange(len(h)))
    all_h, all_p = np.concatenate(hashes), np.concatenate(positions)
    # The first position of each id wins, as when applied batch by batch.
    order = np.lexsort((all_p, all_h))
    all_h, all_p = all_h[order], all_p[order]
    first = np.ones(len(all_h), dtype=bool)
    first[1:] = all_h[1:] != all_h[:-1]
    fresh.hashes, fresh.where = all_h[first], all_p[first]
    fresh.label = np.full(fresh.offsets[-1], -1, dtype=np.int32)
    fresh.label_time = np.zeros(fresh.offsets[-1], dtype="datetime64[ms]")
    async for doc in db[LABEL_BATCHES].find(model_range(model)).sort("_id", 1):
        dense, codes, times = fresh.join(doc)
        fresh.label[dense] = codes
        fresh.label_time[dense] = times
    return fresh


async def check_increments(db: Database, model: str, data: Data) -> dict[str, float]:
    """The column-wise increments against ``label_increments`` (one Labelled per row, the
    service's way) for the first label batch: the largest relative difference of any path,
    and the CPU seconds of each way."""
    doc = await db[LABEL_BATCHES].find_one(model_range(model), sort=[("_id", 1)])
    assert doc is not None
    table = read_ipc(doc["data"])
    index = pd.Index(data.ids)
    rows = index.get_indexer(table["id"].to_numpy(zero_copy_only=False))
    hours = hour_keys(data.times[rows])
    lag = lags(data.times[rows], table["time"].to_numpy().astype("datetime64[ms]"))
    t0 = time.process_time()
    labelled = [
        Labelled(
            hour=int(hours[k]),
            y_pred=str(data.y_pred[i]),
            proba=data.proba[i].tolist(),
            y_true=str(data.y_true[i]),
            lag=float(lag[k]),
            sign=1,
            first=True,
        )
        for k, i in enumerate(rows)
    ]
    theirs, their_max = label_increments(labelled, False, CLASSES, 0.0)
    theirs_cpu = time.process_time() - t0
    t0 = time.process_time()
    first = np.ones(len(rows), dtype=bool)
    parts = [
        (
            hours,
            data.y_true[rows],
            data.y_pred[rows],
            data.proba[rows],
            lag,
            1,
            first,
        )
    ]
    ours, our_max = vector_increments(parts)
    ours_cpu = time.process_time() - t0
    assert theirs.keys() == ours.keys()
    assert their_max == our_max
    worst = 0.0
    for hour, inc in theirs.items():
        assert inc.keys() == ours[hour].keys(), hour
        for key, value in inc.items():
            apart = abs(float(value) - float(ours[hour][key]))
            worst = max(worst, apart / max(abs(float(value)), 1.0))
    return {
        "column-wise vs label_increments, 1st label batch: largest relative difference": worst,
        "CPU s Labelled rows + label_increments": theirs_cpu,
        "CPU s column-wise": ours_cpu,
    }


def join_variants(data: Data, label_bodies: list[bytes]) -> dict[str, float]:
    """CPU seconds of the id -> position look-ups of every label batch, per structure (the
    index built over all predictions first; its build time separately)."""
    out: dict[str, float] = {}
    ids = data.ids.astype(object)
    label_ids = [read_ipc(b)["id"].to_numpy(zero_copy_only=False) for b in label_bodies]
    t0 = time.process_time()
    h = hash_ids(ids)
    order = np.argsort(h)
    sorted_h = h[order]
    out["hash + searchsorted: build"] = time.process_time() - t0
    t0 = time.process_time()
    for part in label_ids:
        q = hash_ids(part)
        at = np.minimum(np.searchsorted(sorted_h, q), len(sorted_h) - 1)
        np.where(sorted_h[at] == q, order[at], -1)
    out["hash + searchsorted: look-ups"] = time.process_time() - t0
    t0 = time.process_time()
    index = pd.Index(ids)
    index.get_indexer(label_ids[0][:1])
    out["pandas Index: build"] = time.process_time() - t0
    t0 = time.process_time()
    for part in label_ids:
        index.get_indexer(part)
    out["pandas Index: look-ups"] = time.process_time() - t0
    t0 = time.process_time()
    table = {k: i for i, k in enumerate(ids)}
    out["dict: build"] = time.process_time() - t0
    t0 = time.process_time()
    for part in label_ids:
        [table.get(k, -1) for k in part]
    out["dict: look-ups"] = time.process_time() - t0
    return out


@dataclass
class Result:
    rows: int
    meter: Meter
    layouts: dict[str, dict[str, float]]
    label_sizes: dict[str, float]
    counts: Counts
    checks: dict[str, Any]
    joins: dict[str, float]
    hours_probe: dict[str, float]
    sklearn_seconds: float
    sklearn_cpu: float
    coalesce: int
    cache: int
    label_order: str
    parse_seconds: float
    client_cpu: float
    disk: dict[str, int]
    load: tuple[tuple[float, float, float], tuple[float, float, float]]


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def run(args: argparse.Namespace, url: str, db_pid: int, data_dir: Path) -> Result:
    load_before = os.getloadavg()
    data = make_data(args.rows)
    late = held_back(data)
    t0 = time.process_time()
    pred_bodies, label_bodies = bodies(data, late, args.label_order)
    client_cpu = time.process_time() - t0
    print(f"data: {args.rows:,} rows, {len(late):,} held back", file=sys.stderr)
    client = connect(url, timeout_seconds=300)
    db = client[DATABASE]
    await ensure_indexes(db)
    meter = Meter(db_pid)
    disk: dict[str, int] = {"start": disk_bytes(data_dir)}

    # 1. the prediction batches, each layout on its own model; the chosen one last.
    layouts: dict[str, dict[str, float]] = {}
    chosen = LAYOUTS[args.layout]
    others = [LAYOUTS[n] for n in args.compare if n != chosen.name]
    model = f"m-{chosen.name}"
    for layout in [*others, chosen]:
        name = f"m-{layout.name}"
        sizes: list[dict[str, int]] = []
        phase_name = f"1. insert prediction batches ({layout.name})"

        def make(seq: int, body: bytes, layout: Layout = layout, name: str = name) -> Any:
            return prediction_doc(name, seq, body, layout)

        async def insert(make: Any = make, name: str = name, sizes: Any = sizes) -> None:
            await insert_batches(db, PREDICTION_BATCHES, name, make, pred_bodies, "p", sizes)

        await meter.run(phase_name, insert)
        phase = meter.phases[-1]
        layouts[layout.name] = {
            "seconds": phase.seconds,
            "db_cpu": phase.db_cpu,
            "script_cpu": phase.script_cpu,
            "bson": float(np.mean([s["bson"] for s in sizes])),
            "ids": float(np.mean([s["ids"] for s in sizes])),
            "cols": float(np.mean([s["cols"] + s.get("proba", 0) for s in sizes])),
            "request": float(np.mean([len(b) for b in pred_bodies])),
        }
        disk[f"after {layout.name}"] = disk_bytes(data_dir)
    await db[repository.MODELS].insert_one(
        {
            "_id": repository.model_key(EXPERIMENT, model),
            "experiment_id": EXPERIMENT,
            "model": model,
            "task": "classification",
            "classes": CLASSES,
            "shift": None,
            "created_at": datetime.now(UTC),
        }
    )

    # 2. the label batches.
    label_sizes: list[dict[str, int]] = []
    await meter.run(
        "2. insert label batches",
        lambda: insert_batches(
            db,
            LABEL_BATCHES,
            model,
            lambda seq, body: label_doc(model, seq, body),
            label_bodies,
            "l",
            label_sizes,
        ),
    )
    disk["after labels"] = disk_bytes(data_dir)

    # 3. apply: predictions, then labels (the held-back batch timed on its own).
    applier = Applier(db, model, args.coalesce, args.cache)

    async def apply_predictions() -> None:
        async for doc in db[PREDICTION_BATCHES].find(model_range(model)).sort("_id", 1):
            await applier.apply_predictions(doc)
        await applier.flush()

    async def apply_labels(first: int, last: int) -> None:
        # The label batches numbered first..last, read as the applier goes.
        span = {"_id": {"$gte": batch_key(model, first), "$lte": batch_key(model, last)}}
        async for doc in db[LABEL_BATCHES].find(span).sort("_id", 1):
            await applier.apply_labels(doc)
        await applier.flush()

    def note(before: Counts) -> str:
        now = applier.counts
        return (
            f"{now.hours_written - before.hours_written} hour writes "
            f"{now.write_seconds - before.write_seconds:.2f} s; increments "
            f"{now.increment_seconds - before.increment_seconds:.2f} s; "
            f"{now.fetched - before.fetched} prediction batches fetched"
        )

    n_labels = len(label_bodies)
    for name, work in (
        ("3a. apply predictions", apply_predictions),
        ("3b. apply labels (in-time batches)", lambda: apply_labels(1, n_labels - 1)),
        ("3c. apply labels (held-back day, 1 batch)", lambda: apply_labels(n_labels, n_labels)),
    ):
        before = dataclasses.replace(applier.counts)
        await meter.run(name, work)
        meter.phases[-1].note = note(before)
    disk["after apply"] = disk_bytes(data_dir)

    # 4. cold start.
    fresh = await meter.run("4. cold start: index rebuilt", lambda: cold_start(db, model))
    same = (
        np.array_equal(fresh.hashes, applier.hashes)
        and np.array_equal(fresh.where, applier.where)
        and np.array_equal(fresh.label, applier.label)
        and fresh.offsets == applier.offsets
    )

    # 5. the daily windows.
    end = START + timedelta(days=DAYS)
    answer = await meter.run(
        "5. daily windows read",
        lambda: service.performance(db, EXPERIMENT, model, Window.day, START, end, RULES),
    )
    checks = check_days(answer, data)
    checks["cold start index equals the applier's"] = same
    checks |= await check_increments(db, model, data)
    hours_probe = await packed_hours(meter, db, model)
    await client.close()

    frame = pd.DataFrame(
        {"id": data.ids, "time": data.times, "y_pred": data.y_pred}
        | {f"proba_{c}": data.proba[:, k] for k, c in enumerate(CLASSES)}
    )
    label_frame = pd.DataFrame({"id": data.ids, "y_true": data.y_true})
    t0, cpu0 = time.perf_counter(), time.process_time()
    reference = sklearn_daily(frame, label_frame)
    sklearn_seconds = time.perf_counter() - t0
    sklearn_cpu = time.process_time() - cpu0
    checks |= agree(answer, reference)
    joins = join_variants(data, label_bodies)
    t0 = time.process_time()
    now = datetime.now(UTC)
    for body in pred_bodies:
        service._parse_predictions(read_ipc(body), now, BATCH)
    parse_seconds = time.process_time() - t0
    return Result(
        rows=args.rows,
        meter=meter,
        layouts=layouts,
        label_sizes={
            "bson": float(np.mean([s["bson"] for s in label_sizes])),
            "data": float(np.mean([s["data"] for s in label_sizes])),
        },
        counts=applier.counts,
        checks=checks,
        joins=joins,
        hours_probe=hours_probe,
        sklearn_seconds=sklearn_seconds,
        sklearn_cpu=sklearn_cpu,
        coalesce=args.coalesce,
        cache=args.cache,
        label_order=args.label_order,
        parse_seconds=parse_seconds,
        client_cpu=client_cpu,
        disk=disk,
        load=(load_before, os.getloadavg()),
    )


def check_days(answer: dict[str, Any], data: Data) -> dict[str, Any]:
    """Each day's counts, and the held-back day's accuracy, against a direct computation."""
    start = np.datetime64(START.replace(tzinfo=None), "ms")
    day = (data.times - start).astype("timedelta64[D]").astype(np.int64)
    assert len(answer["windows"]) == DAYS, len(answer["windows"])
    counts_ok = True
    for k, window in enumerate(answer["windows"]):
        n = int((day == k).sum())
        counts_ok &= window["n_predicted"] == n and window["n_labelled"] == n
    mask = day == LATE_DAY
    direct = float((data.y_pred[mask] == data.y_true[mask]).mean())
    ours = answer["windows"][LATE_DAY]["metrics"]["accuracy"]["value"]
    return {
        "every day's n_predicted and n_labelled right": counts_ok,
        f"day {LATE_DAY} accuracy: windows vs direct": (ours, direct),
    }


def agree(answer: dict[str, Any], reference: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The largest difference per metric against scikit-learn over the days."""
    worst: dict[str, float] = {}
    for window in answer["windows"]:
        ref = reference[window["start"].strftime("%Y-%m-%d")]
        for name in ("accuracy", "f1_macro", "log_loss", "brier", "ece", "roc_auc"):
            value = window["metrics"][name]["value"]
            worst[name] = max(worst.get(name, 0.0), abs(value - float(ref[name])))
        cm = np.array(window["confusion_matrix"]["matrix"])
        order = [CLASSES.index(c) for c in window["confusion_matrix"]["labels"]]
        differing = float((cm != ref["confusion"][np.ix_(order, order)]).sum())
        worst["confusion cells differing"] = worst.get("confusion cells differing", 0.0) + differing
    return {f"vs scikit-learn: {k}": v for k, v in worst.items()}


# --- the report ----------------------------------------------------------------------------------


def report(result: Result, layout: str) -> str:
    phases = {p.name.split(" ")[0]: p for p in result.meter.phases if not p.name.startswith("1.")}
    insert = next(p for p in result.meter.phases if p.name.endswith(f"({layout})"))
    ours = [insert, phases["2."], phases["3a."], phases["3b."], phases["3c."], phases["5."]]
    total = sum(p.seconds for p in ours)
    total_cpu = sum(p.db_cpu + p.script_cpu for p in ours)
    lines = [
        f"Rows {result.rows:,}; load average before {_load(result.load[0])}, after "
        f"{_load(result.load[1])}; layout {layout}; the applier writes the hours every "
        f"{result.coalesce} batch(es) and keeps {result.cache} prediction batches; labels in "
        f"{ {'random': 'random'}.get(result.label_order, result.label_order + '-time') } order.",
        "",
        "| phase | seconds | CPU s SecantusDB | CPU s script | note |",
        "|---|--:|--:|--:|---|",
    ]
    for p in result.meter.phases:
        lines.append(
            f"| {p.name} | {p.seconds:.2f} | {p.db_cpu:.2f} | {p.script_cpu:.2f} | {p.note} |"
        )
    lines += [
        f"| **ingest + apply + daily read** | **{total:.2f}** | | | CPU {total_cpu:.2f} |",
        f"| scikit-learn (merge + per-day metrics) | {result.sklearn_seconds:.2f} | | "
        f"{result.sklearn_cpu:.2f} | |",
        "",
        f"Ratio (ingest + apply + daily read) / scikit-learn: {total / result.sklearn_seconds:.1f}x"
        f" wall; {total_cpu / result.sklearn_cpu:.1f}x CPU (SecantusDB + script against "
        "scikit-learn's process CPU).",
        "",
        "| layout | bytes per batch (BSON) | ids | other columns | request body |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, v in result.layouts.items():
        lines.append(
            f"| {name} | {v['bson']:,.0f} | {v['ids']:,.0f} | {v['cols']:,.0f} | "
            f"{v['request']:,.0f} |"
        )
    c = result.counts
    lines += [
        "",
        f"Label batches: {result.label_sizes['bson']:,.0f} bytes (BSON) each. On disk: "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in result.disk.items())
        + ".",
        "",
        f"Applier: {c.hours_written} hour writes (add_to_windows) taking {c.write_seconds:.2f} s; "
        f"increments and index work {c.increment_seconds:.2f} s; prediction batches fetched "
        f"{c.fetched}, cache hits {c.cache_hits}; labelled {c.labelled:,}, changed "
        f"{c.changed}, unchanged {c.unchanged}, unknown {c.unknown}, duplicate predictions "
        f"{c.duplicates}.",
        "",
        "Join structures (CPU s, all predictions indexed, every label batch looked up): "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.joins.items())
        + ".",
        "",
        f"Left out, measured apart: the backend's parse of every prediction batch "
        f"(`service._parse_predictions`) {result.parse_seconds:.2f} CPU s; the client's "
        f"serialisation of every request body (Arrow IPC) {result.client_cpu:.2f} CPU s.",
        "",
        "Hour documents: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in result.hours_probe.items())
        + f"; a packed hour is {PACKED * 8:,} bytes (phases 6).",
        "",
        "Checks: " + "; ".join(f"{k}: {_fmt(v)}" for k, v in result.checks.items()) + ".",
    ]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2g}"
    if isinstance(value, tuple):
        return " vs ".join(f"{v:.6f}" for v in value)
    return str(value)


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--coalesce", type=int, default=1, help="batches the applier adds per hour write"
    )
    parser.add_argument(
        "--label-order", choices=["prediction", "label", "random"], default="prediction"
    )
    parser.add_argument("--cache", type=int, default=CACHE, help="prediction batches kept")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="ipc-lz4")
    parser.add_argument(
        "--compare", nargs="*", default=sorted(LAYOUTS), help="layouts inserted on other models"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drift-colprobe-") as tmp:
        work = Path(tmp)
        mongo = start_mongodb(free_port(), work / "db", log_path=work / "secantus.log")
        try:
            result = asyncio.run(run(args, mongo.url, mongo.process.pid, work / "db"))
        finally:
            mongo.stop()
    print(report(result, args.layout))


if __name__ == "__main__":
    main()
