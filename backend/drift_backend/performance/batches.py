"""Reading prediction, ground-truth and reference tables into arrays, within the documented
limits (pure: pyarrow and numpy, no I/O). Every problem is a :class:`BatchError` naming the
column at fault, answered 422 (413 for the row limit).

Columns:

- ``id``: string or integer, at most ``MAX_ID_LENGTH`` characters, unique within a batch;
- ``y_pred`` / ``y_true``: class labels (strings, integers, booleans as ``"0"``/``"1"``,
  integral floats) or, for a regression model, numbers;
- ``proba_<class>``: the predicted probability of each class (numbers in [0, 1], each row
  summing to 1 within ``PROBA_TOLERANCE``);
- ``time``: when the prediction was made (or the label became known); a timestamp, naive
  ones read as UTC. Without it: when the server received the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from drift_backend.baselines.ingest import BatchError

MAX_ID_LENGTH = 128
MAX_LABEL_LENGTH = 256
PROBA_PREFIX = "proba_"
PROBA_TOLERANCE = 1e-3


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


@dataclass
class Rows:
    """One batch as arrays: ``y`` strings (classification) or floats (regression)."""

    y: np.ndarray
    ids: list[str] | None = None
    y_pred: np.ndarray | None = None
    proba: np.ndarray | None = None
    classes: list[str] | None = None
    times: np.ndarray | None = None  # datetime64[ms], UTC


def _invalid(field: str, reason: str) -> BatchError:
    return BatchError(field, reason, 422)


def check_rows(table: pa.Table, max_rows: int) -> None:
    if table.num_rows > max_rows:
        raise BatchError("max_rows", f"more than {max_rows} rows in one batch", 413)


#: Class probabilities per batch (rows x classes): a batch, and a label batch's joined rows,
#: are stored as one document each, under MongoDB's 16 MB (8 bytes a probability).
MAX_BATCH_PROBABILITIES = 1_000_000


def check_probabilities(rows: int, n_classes: int) -> None:
    if n_classes and rows * n_classes > MAX_BATCH_PROBABILITIES:
        most = MAX_BATCH_PROBABILITIES // n_classes
        raise BatchError(
            "max_rows",
            f"{rows} rows of a model with {n_classes} classes: at most {most} rows per batch "
            f"({MAX_BATCH_PROBABILITIES:,} class probabilities)",
            413,
        )


def check_classes(classes: list[str], y: np.ndarray, field: str, max_classes: int) -> None:
    """At most ``max_classes`` probability columns, and distinct labels in ``y``: an hour
    keeps a confusion cell per pair of labels and score counts per class, in one document."""
    if len(classes) > max_classes:
        raise _invalid(
            PROBA_PREFIX + "*",
            f"{len(classes)} classes; a model has at most {max_classes} "
            "(DRIFT_PERFORMANCE_MAX_CLASSES)",
        )
    distinct = len(pd.unique(y))
    if distinct > max_classes:
        raise _invalid(
            field,
            f"{distinct} distinct labels in one batch; a model has at most {max_classes} "
            "classes (DRIFT_PERFORMANCE_MAX_CLASSES)",
        )


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise _invalid(name, "required column is missing")
    column = table.column(name)
    if column.null_count:
        raise _invalid(name, "must have no missing values")
    return column


def read_ids(table: pa.Table) -> list[str]:
    column = _column(table, "id")
    if pa.types.is_integer(column.type) or pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    if not pa.types.is_string(column.type):
        raise _invalid("id", f"must be strings or integers, not {column.type}")
    lengths = pc.utf8_length(column)
    if pc.max(lengths).as_py() > MAX_ID_LENGTH:
        raise _invalid("id", f"an id is longer than {MAX_ID_LENGTH} characters")
    if pc.min(lengths).as_py() == 0:
        raise _invalid("id", "ids must not be empty")
    ids: list[str] = column.to_pylist()
    if len(set(ids)) != len(ids):
        raise _invalid("id", "duplicate ids in the batch; each id once per batch")
    return ids


def infer_task(table: pa.Table, target: str) -> Task:
    """Numbers with fractions and no probability columns are a regression; anything else
    (labels, integers, probabilities) a classification."""
    column = _column(table, target)
    if any(name.startswith(PROBA_PREFIX) for name in table.column_names):
        return Task.classification
    return Task.regression if pa.types.is_floating(column.type) else Task.classification


def read_target(table: pa.Table, name: str, task: Task) -> np.ndarray:
    column = _column(table, name)
    t = column.type
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = column.type
    if task is Task.regression:
        if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
            raise _invalid(name, f"a regression model's values must be numbers, not {t}")
        values: np.ndarray = column.to_numpy().astype(np.float64)
        if not np.isfinite(values).all():
            raise _invalid(name, "values must be finite numbers")
        return values
    if pa.types.is_boolean(t):
        flags: np.ndarray = np.where(column.to_numpy(), "1", "0").astype(object)
        return flags
    if pa.types.is_integer(t):
        return np.array([str(v) for v in column.to_pylist()], dtype=object)
    if pa.types.is_floating(t):
        values = column.to_numpy()
        if not (np.isfinite(values).all() and np.all(values == np.round(values))):
            raise _invalid(name, "class labels given as numbers must be whole numbers")
        return np.array([str(int(v)) for v in values], dtype=object)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        labels = column.to_pylist()
        if any(not label or len(label) > MAX_LABEL_LENGTH for label in labels):
            raise _invalid(name, f"class labels must have 1 to {MAX_LABEL_LENGTH} characters")
        return np.array(labels, dtype=object)
    raise _invalid(name, f"unsupported type {t} for class labels")


def read_proba(table: pa.Table) -> tuple[np.ndarray | None, list[str]]:
    """The ``proba_<class>`` columns as a matrix (rows x classes) and the class names."""
    names = [n for n in table.column_names if n.startswith(PROBA_PREFIX)]
    if not names:
        return None, []
    columns = []
    for name in names:
        column = _column(table, name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise _invalid(name, f"probabilities must be numbers, not {column.type}")
        values = column.to_numpy().astype(np.float64)
        if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise _invalid(name, "probabilities must be numbers in [0, 1]")
        columns.append(values)
    classes = [name.removeprefix(PROBA_PREFIX) for name in names]
    if any(not cls for cls in classes):
        raise _invalid(PROBA_PREFIX, "name the class after the prefix: proba_<class>")
    if len(classes) < 2:
        raise _invalid(names[0], "send a probability column for every class (at least two)")
    matrix = np.column_stack(columns)
    sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > PROBA_TOLERANCE)
    if len(bad):
        raise _invalid(
            PROBA_PREFIX + "*",
            f"row {int(bad[0])}: probabilities sum to {sums[bad[0]]:.6g}, not 1",
        )
    return matrix, classes


def read_times(table: pa.Table, name: str, now: datetime) -> np.ndarray:
    """``datetime64[ms]`` (UTC) per row: the ``time`` column, else ``now`` for all."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.datetime64(now.replace(tzinfo=None), "ms"))
    column = _column(table, name)
    t = column.type
    if pa.types.is_date(t):
        column = pc.cast(column, pa.timestamp("ms"))
    elif pa.types.is_timestamp(t):
        # A zoned timestamp is stored as UTC already; dropping the zone keeps the instant.
        column = pc.cast(column, pa.timestamp("ms", tz=t.tz)).cast(pa.int64())
        column = column.cast(pa.timestamp("ms"))
    else:
        raise _invalid(name, f"must be timestamps, not {t}")
    times: np.ndarray = column.to_numpy().astype("datetime64[ms]")
    return times
