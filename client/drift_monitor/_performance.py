"""Predictions, late ground truth and labelled references: the columns the server reads
(``docs/performance.md``), split into batches of at most the server's row limit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

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
    #: Rows the server could not take now, kept in the spool and sent later.
    spooled: int = 0
    #: Rows neither sent nor spooled (they did not fit under the spool's size cap).
    dropped: int = 0


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
    #: Rows the server could not take now, kept in the spool and sent later.
    spooled: int = 0
    #: Rows neither sent nor spooled (they did not fit under the spool's size cap).
    dropped: int = 0


Recorded = TypeVar("Recorded", PredictionsRecorded, LabelsRecorded)
#: The server's counts in each answer (summed over batches).
_COUNTS = {
    PredictionsRecorded: ("received", "recorded", "duplicates"),
    LabelsRecorded: ("received", "labelled", "changed", "unchanged", "unknown"),
}


def add_answer(total: Recorded, answer: Mapping[str, Any]) -> Recorded:
    """``total`` plus one batch's answer from the server."""
    changes: dict[str, Any] = {
        name: getattr(total, name) + int(answer[name]) for name in _COUNTS[type(total)]
    }
    if isinstance(total, PredictionsRecorded):
        changes |= {"task": str(answer["task"]), "classes": [str(c) for c in answer["classes"]]}
    else:
        changes["unknown_ids"] = total.unknown_ids + list(answer["unknown_ids"])
    return replace(total, **changes)


def add_unsent(total: Recorded, rows: int, *, spooled: bool) -> Recorded:
    """``total`` plus ``rows`` spooled (or dropped, when the spool had no room)."""
    if spooled:
        return replace(total, spooled=total.spooled + rows)
    return replace(total, dropped=total.dropped + rows)


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


def rows_of(columns: Columns) -> int:
    return len(next(iter(columns.values())))


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
