"""A stored batch's columns (pure: pyarrow, numpy, pandas' hashing; no I/O).

A batch is kept as Arrow IPC bytes, the ids apart from the rest so that an applier
rebuilding its index reads the ids alone. What each kind holds:

- predictions: ``time`` (ms since the epoch, UTC), ``y`` (labels as strings, or floats for
  a regression), and the probabilities as ``p0`` .. ``pK`` in the model's class order;
- labels: ``y`` (the label) and ``lt`` (when it became known);
- a label batch's joined rows, written when it is applied: each label that changed
  something, with its prediction's ``time``, ``y``, probabilities and drift run, so the
  label outlives its prediction batch's expiry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def hash_ids(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes (SipHash-2-4 with pandas' fixed key) of string ids: what the index
    holds. Two different ids of one model share a hash with probability about n²/2⁶⁵ (1e-8
    for a million ids); the label join compares the ids themselves, so a label never lands
    on another id's prediction (the later id of such a pair is taken for a re-sent one)."""
    return np.asarray(pd.util.hash_array(ids.astype(object), categorize=False), dtype=np.uint64)


def ids_table(ids: np.ndarray) -> pa.Table:
    return pa.table({"id": pa.array(ids, type=pa.string())})


def read_ids(data: bytes) -> np.ndarray:
    return np.asarray(from_ipc(data).column("id").to_numpy(zero_copy_only=False), dtype=object)


def _target(values: np.ndarray, regression: bool) -> pa.Array:
    return pa.array(values, type=pa.float64() if regression else pa.string())


def _read_target(table: pa.Table, name: str, regression: bool) -> np.ndarray:
    column = table.column(name)
    if regression:
        return np.asarray(column.to_numpy(), dtype=np.float64)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _ms(times: np.ndarray) -> pa.Array:
    return pa.array(times.astype("datetime64[ms]").astype(np.int64), type=pa.int64())


def _times(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.int64).astype("datetime64[ms]")


@dataclass
class Predictions:
    """A prediction batch's rows (``proba``: rows x classes in the model's order)."""

    ids: np.ndarray
    times: np.ndarray  # datetime64[ms]
    y: np.ndarray
    proba: np.ndarray | None

    def encode(self, regression: bool) -> bytes:
        columns: dict[str, pa.Array] = {"time": _ms(self.times), "y": _target(self.y, regression)}
        if self.proba is not None:
            for k in range(self.proba.shape[1]):
                columns[f"p{k}"] = pa.array(self.proba[:, k], type=pa.float64())
        return to_ipc(pa.table(columns))


def _proba(table: pa.Table, n_classes: int) -> np.ndarray | None:
    if "p0" not in table.column_names:
        return None
    return np.column_stack([np.asarray(table.column(f"p{k}").to_numpy()) for k in range(n_classes)])


def decode_predictions(ids: bytes, data: bytes, regression: bool, n_classes: int) -> Predictions:
    table = from_ipc(data)
    return Predictions(
        ids=read_ids(ids),
        times=_times(table, "time"),
        y=_read_target(table, "y", regression),
        proba=_proba(table, n_classes),
    )


@dataclass
class Labels:
    ids: np.ndarray
    y: np.ndarray
    times: np.ndarray  # datetime64[ms]

    def encode(self, regression: bool) -> bytes:
        return to_ipc(pa.table({"y": _target(self.y, regression), "lt": _ms(self.times)}))


def decode_labels(ids: bytes, data: bytes, regression: bool) -> Labels:
    table = from_ipc(data)
    return Labels(
        ids=read_ids(ids),
        y=_read_target(table, "y", regression),
        times=_times(table, "lt"),
    )


@dataclass
class Joined:
    """Labelled rows with their predictions: what a label batch changed."""

    ids: np.ndarray
    y_true: np.ndarray
    label_times: np.ndarray  # datetime64[ms]
    times: np.ndarray  # the predictions'
    y_pred: np.ndarray
    #: rows x classes; a row of NaN: its prediction had no probabilities.
    proba: np.ndarray | None
    #: The drift run each prediction was recorded with, "" for none.
    runs: np.ndarray

    def encode(self, regression: bool) -> bytes:
        columns: dict[str, pa.Array] = {
            "id": pa.array(self.ids, type=pa.string()),
            "y": _target(self.y_true, regression),
            "lt": _ms(self.label_times),
            "time": _ms(self.times),
            "pred": _target(self.y_pred, regression),
            "run": pa.array(self.runs, type=pa.string()),
        }
        if self.proba is not None:
            for k in range(self.proba.shape[1]):
                columns[f"p{k}"] = pa.array(self.proba[:, k], type=pa.float64())
        return to_ipc(pa.table(columns))

    def take(self, rows: np.ndarray) -> Joined:
        return Joined(
            self.ids[rows],
            self.y_true[rows],
            self.label_times[rows],
            self.times[rows],
            self.y_pred[rows],
            None if self.proba is None else self.proba[rows],
            self.runs[rows],
        )


def decode_joined(data: bytes, regression: bool, n_classes: int) -> Joined:
    table = from_ipc(data)
    return Joined(
        ids=np.asarray(table.column("id").to_numpy(zero_copy_only=False), dtype=object),
        y_true=_read_target(table, "y", regression),
        label_times=_times(table, "lt"),
        times=_times(table, "time"),
        y_pred=_read_target(table, "pred", regression),
        proba=_proba(table, n_classes),
        runs=np.asarray(table.column("run").to_numpy(zero_copy_only=False), dtype=object),
    )


def lags(prediction_times: np.ndarray, label_times: np.ndarray) -> np.ndarray:
    """Seconds from each prediction to its label, never negative."""
    delta = (label_times - prediction_times).astype("timedelta64[ms]").astype(np.int64)
    return np.asarray(np.maximum(0.0, delta / 1000.0))
