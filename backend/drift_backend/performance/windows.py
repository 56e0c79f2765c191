"""Time windows and their sufficient statistics (pure: numpy, no I/O).

The stored unit is the hour: one document per (experiment, model, hour) holds counts and sums
(:mod:`.metrics` says which); a drift run's document holds the same over its predictions. They only ever grow or shrink by ``$inc`` — a new prediction
adds to its hour's count, a label adds its row's contribution to the hour the prediction was
made in, a changed label subtracts the old contribution and adds the new one — so concurrent
writers never lose an update and no prediction is read again. Days and weeks are sums of
their hours, made when read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np

from drift_backend.performance.metrics import AUC_BINS, ECE_BINS, EPS, class_order

Stats = dict[str, Any]


class Window(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"


def window_start(start: datetime, window: Window) -> datetime:
    """The start of the ``window`` holding ``start`` (UTC; weeks start on Monday)."""
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if window is Window.hour:
        return start
    day = start.replace(hour=0)
    if window is Window.day:
        return day
    return day - timedelta(days=day.weekday())


def hour_keys(times: np.ndarray) -> np.ndarray:
    """Hours since the epoch of ``datetime64`` times: the stored window of each row."""
    return times.astype("datetime64[h]").astype(np.int64)


def hour_start(key: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=int(key))


# --- keys: MongoDB field names may hold no '.' and start with no '$' ---------------------------


def escape(key: str) -> str:
    return key.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unescape(key: str) -> str:
    return key.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def flatten(stats: Mapping[str, Any], prefix: str = "") -> dict[str, float | int]:
    """``{"cm": {"a": {"b": 1}}}`` -> ``{"cm.a.b": 1}``: the paths of an ``$inc``."""
    out: dict[str, float | int] = {}
    for key, value in stats.items():
        path = f"{prefix}{escape(key)}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def add_into(total: Stats, part: Mapping[str, Any], *, stored: bool = False) -> Stats:
    """Add ``part`` into ``total`` in place (``stored``: its keys are escaped); ``lag_max``
    keeps the larger."""
    for raw, value in part.items():
        key = unescape(raw) if stored else raw
        if isinstance(value, Mapping):
            add_into(total.setdefault(key, {}), value, stored=stored)
        elif key == "lag_max":
            total[key] = max(total.get(key, 0.0), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


# --- contributions of labelled rows --------------------------------------------------------------


def _counts(codes: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(codes, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, sign: int) -> dict[str, dict[str, int]]:
    true_labels, true_codes = np.unique(y_true, return_inverse=True)
    pred_labels, pred_codes = np.unique(y_pred, return_inverse=True)
    pairs, counts = np.unique(true_codes * len(pred_labels) + pred_codes, return_counts=True)
    out: dict[str, dict[str, int]] = {}
    for pair, count in zip(pairs, counts, strict=True):
        t, p = divmod(int(pair), len(pred_labels))
        out.setdefault(str(true_labels[t]), {})[str(pred_labels[p])] = sign * int(count)
    return out


def _probability_stats(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], sign: int
) -> Stats:
    index = {cls: i for i, cls in enumerate(classes)}
    truth = np.array([index.get(str(y), -1) for y in y_true], dtype=np.int64)
    rows = np.arange(len(truth))
    onehot = np.zeros_like(proba)
    known = truth >= 0
    onehot[rows[known], truth[known]] = 1.0
    p_true = np.where(known, proba[rows, np.maximum(truth, 0)], 0.0)
    top = np.argmax(proba, axis=1)
    confidence = proba[rows, top]
    correct = (top == truth).astype(np.int64)
    bins = np.minimum((confidence * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    ece: dict[str, dict[str, float | int]] = {}
    for b in np.unique(bins):
        in_bin = bins == b
        ece[str(int(b))] = {
            "n": sign * int(in_bin.sum()),
            "c": sign * float(confidence[in_bin].sum()),
            "k": sign * int(correct[in_bin].sum()),
        }
    # Binary: the positive class's score is all ROC AUC needs.
    scored = [class_order(classes)[-1]] if len(classes) == 2 else classes
    auc: dict[str, dict[str, dict[str, int]]] = {}
    for cls in scored:
        k = index[cls]
        codes = np.rint(proba[:, k] * AUC_BINS).astype(np.int64)
        positive = truth == k
        histogram: dict[str, dict[str, int]] = {}
        for side, mask in (("p", positive), ("n", ~positive)):
            for b, count in _counts(codes[mask]).items():
                histogram.setdefault(b, {})[side] = sign * count
        auc[cls] = histogram
    return {
        "np": sign * len(truth),
        "ll": sign * float(-np.log(np.clip(p_true, EPS, 1 - EPS)).sum()),
        "br": sign * float(((proba - onehot) ** 2).sum()),
        "ece": ece,
        "auc": auc,
    }


def classification_stats(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[str],
    sign: int = 1,
) -> Stats:
    """The statistics of labelled rows (labels as strings); ``proba`` columns in the order
    of ``classes``. ``sign`` -1 takes rows out again (a label that changed)."""
    stats: Stats = {"cm": _confusion(y_true, y_pred, sign)}
    if proba is not None and len(classes):
        stats.update(_probability_stats(y_true, proba, classes, sign))
    return stats


def regression_stats(y_true: np.ndarray, y_pred: np.ndarray, shift: float, sign: int = 1) -> Stats:
    error = y_pred - y_true
    shifted = y_true - shift
    return {
        "n": sign * len(error),
        "e": sign * float(error.sum()),
        "a": sign * float(np.abs(error).sum()),
        "s": sign * float((error**2).sum()),
        # e⁴, the spread of e² (the RMSE decision's bootstrap standard error).
        "q": sign * float((error**4).sum()),
        "m": sign * float((np.abs(error) / np.maximum(np.abs(y_true), EPS)).sum()),
        "y": sign * float(shifted.sum()),
        "y2": sign * float((shifted**2).sum()),
    }


def by_hour(keys: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """(hour, row mask) for each hour among ``keys``."""
    for key in np.unique(keys):
        yield int(key), keys == key


def escape_tree(stats: Mapping[str, Any]) -> Stats:
    """``stats`` with every key escaped, to be stored as a nested document."""
    return {escape(k): escape_tree(v) if isinstance(v, Mapping) else v for k, v in stats.items()}


def unescape_tree(stored: Mapping[str, Any]) -> Stats:
    return add_into({}, stored, stored=True)


@dataclass(frozen=True)
class Labelled:
    """One label's effect on its prediction's hour: ``sign`` +1 adds the (prediction,
    label) row, -1 takes a replaced label's row out again; ``first``: the prediction had
    no label before (it counts towards the hour's labelled predictions)."""

    hour: int
    y_pred: Any
    proba: list[float] | None
    y_true: Any
    lag: float
    sign: int
    first: bool = False
    #: The drift run the prediction was recorded with, if any (its run document).
    run: str | None = None


Key = TypeVar("Key", int, str)


def label_increments(
    rows: list[Labelled], regression: bool, classes: list[str], shift: float
) -> tuple[dict[int, dict[str, float | int]], dict[int, float]]:
    """The ``$inc`` of each hour the ``rows`` touch, and each hour's longest label lag."""
    return _increments(rows, [row.hour for row in rows], regression, classes, shift)


def run_increments(
    rows: list[Labelled], regression: bool, classes: list[str], shift: float
) -> tuple[dict[str, dict[str, float | int]], dict[str, float]]:
    """The same for the run documents: the ``$inc`` of each run among the ``rows`` (rows
    of predictions without a run add to none), and each run's longest label lag."""
    with_run = [row for row in rows if row.run is not None]
    return _increments(with_run, [str(row.run) for row in with_run], regression, classes, shift)


def _increments(
    rows: list[Labelled], keys: list[Key], regression: bool, classes: list[str], shift: float
) -> tuple[dict[Key, dict[str, float | int]], dict[Key, float]]:
    """The ``$inc`` of each document (``keys[i]`` holds ``rows[i]``) and its longest lag."""
    groups: dict[tuple[Key, int, bool], list[Labelled]] = {}
    for row, key in zip(rows, keys, strict=True):
        groups.setdefault((key, row.sign, row.proba is not None), []).append(row)
    totals: dict[Key, Stats] = {}
    lag_max: dict[Key, float] = {}
    for (key, sign, with_proba), group in groups.items():
        total = totals.setdefault(key, {})
        y_true = np.array([r.y_true for r in group], dtype=np.float64 if regression else object)
        y_pred = np.array([r.y_pred for r in group], dtype=np.float64 if regression else object)
        if regression:
            stats = regression_stats(y_true, y_pred, shift, sign)
        else:
            proba = np.array([r.proba for r in group]) if with_proba else None
            stats = classification_stats(y_true, y_pred, proba, classes, sign)
        add_into(total, {"s": stats})
        lags = [r.lag for r in group]
        add_into(
            total,
            {"n_lab": sum(sign for r in group if r.first), "lag_sum": sign * float(sum(lags))},
        )
        if sign > 0:
            lag_max[key] = max(lag_max.get(key, 0.0), max(lags))
    return {key: flatten(total) for key, total in totals.items()}, lag_max
