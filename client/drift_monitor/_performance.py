"""Predictions, late ground truth and labelled references: the columns the server reads
(``docs/performance.md``), split into batches of at most the server's row limit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from drift_monitor._exceptions import DataError

#: Rows per request: the server's default ``DRIFT_PERFORMANCE_MAX_BATCH_ROWS``. A server
#: configured lower answers 413 naming ``max_rows``; pass ``batch_size`` then.
BATCH_ROWS = 10_000
PROBA_PREFIX = "proba_"

Columns = dict[str, Any]
#: A column of values: a list, a tuple, a numpy array, a pandas Series, a pyarrow array.
Values = Any


@dataclass(frozen=True)
class PredictionsRecorded:
    """What the server did with predictions (summed over the batches sent)."""

    received: int = 0
    recorded: int = 0
    #: Ids recorded earlier: the first prediction of an id is kept.
    duplicates: int = 0
    task: str | None = None
    classes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabelsRecorded:
    """What the server did with labels (summed over the batches sent)."""

    received: int = 0
    labelled: int = 0
    changed: int = 0
    unchanged: int = 0
    #: Ids never predicted (or expired unlabelled): counted, not stored.
    unknown: int = 0
    unknown_ids: list[str] = field(default_factory=list)


def add_predictions(total: PredictionsRecorded, answer: Mapping[str, Any]) -> PredictionsRecorded:
    return PredictionsRecorded(
        received=total.received + int(answer["received"]),
        recorded=total.recorded + int(answer["recorded"]),
        duplicates=total.duplicates + int(answer["duplicates"]),
        task=str(answer["task"]),
        classes=[str(c) for c in answer["classes"]],
    )


def add_labels(total: LabelsRecorded, answer: Mapping[str, Any]) -> LabelsRecorded:
    counts = {
        f.name: getattr(total, f.name) + int(answer[f.name])
        for f in fields(LabelsRecorded)
        if f.name != "unknown_ids"
    }
    return LabelsRecorded(**counts, unknown_ids=total.unknown_ids + list(answer["unknown_ids"]))


def proba_columns(proba: Any, classes: Sequence[Any] | None) -> Columns:
    """``proba_<class>`` columns from a mapping of class -> probabilities (a DataFrame
    works: its column names are the classes) or from rows of probabilities with
    ``classes`` naming the columns (default ``0..k-1``)."""
    if proba is None:
        return {}
    columns = getattr(proba, "columns", None)
    if columns is not None and classes is None:
        return {f"{PROBA_PREFIX}{name}": proba[name] for name in columns}
    if isinstance(proba, Mapping):
        return {f"{PROBA_PREFIX}{name}": values for name, values in proba.items()}
    tolist = getattr(proba, "tolist", None)
    rows = tolist() if callable(tolist) else [list(row) for row in proba]
    width = len(rows[0]) if rows else 0
    if any(len(row) != width for row in rows):
        raise DataError("proba: every row needs one probability per class")
    names = list(classes) if classes is not None else list(range(width))
    if len(names) != width:
        raise DataError(f"proba: {width} columns but {len(names)} classes")
    return {f"{PROBA_PREFIX}{name}": [row[k] for row in rows] for k, name in enumerate(names)}


def split(columns: Columns, batch_size: int) -> Iterator[Columns]:
    """The columns in slices of ``batch_size`` rows (each column a sequence)."""
    if batch_size < 1:
        raise DataError("batch_size must be at least 1")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"columns of different lengths: {lengths}")
    rows = next(iter(lengths.values()), 0)
    if rows == 0:
        raise DataError("nothing to send: no rows")
    for start in range(0, rows, batch_size):
        yield {name: _rows(values, start, start + batch_size) for name, values in columns.items()}


def _rows(values: Any, start: int, end: int) -> Any:
    iloc = getattr(values, "iloc", None)  # pandas: by position, whatever the index
    if iloc is not None:
        return iloc[start:end]
    return values[start:end]
