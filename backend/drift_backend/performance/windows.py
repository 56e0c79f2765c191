"""Time windows and their sufficient statistics (pure: numpy, no I/O).

The stored unit is the hour: one document per (experiment, model, hour) holds counts and sums
(:mod:`.metrics` says which); a drift run's document holds the same over its predictions. They only ever grow or shrink by ``$inc`` — a new prediction
adds to its hour's count, a label adds its row's contribution to the hour the prediction was
made in, a changed label subtracts the old contribution and adds the new one — so concurrent
writers never lose an update and no prediction is read again. Days and weeks are sums of
their hours, made when read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from drift_backend.performance import estimation
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


def _nested(value: Any) -> bool:
    # dict first: the common case, and isinstance on an ABC is slow (millions of leaves).
    return isinstance(value, dict) or (
        not isinstance(value, int | float) and isinstance(value, Mapping)
    )


def flatten(
    stats: Mapping[str, Any], prefix: str = "", out: dict[str, float | int] | None = None
) -> dict[str, float | int]:
    """``{"cm": {"a": {"b": 1}}}`` -> ``{"cm.a.b": 1}``: the paths of an ``$inc``."""
    if out is None:
        out = {}
    for key, value in stats.items():
        plain = "." not in key and "$" not in key and "%" not in key
        path = prefix + (key if plain else escape(key))
        if _nested(value):
            flatten(value, path + ".", out)
        else:
            out[path] = value
    return out


def add_into(total: Stats, part: Mapping[str, Any], *, stored: bool = False) -> Stats:
    """Add ``part`` into ``total`` in place (``stored``: its keys are escaped); ``lag_max``
    keeps the larger."""
    for raw, value in part.items():
        key = unescape(raw) if stored and "%" in raw else raw
        if _nested(value):
            add_into(total.setdefault(key, {}), value, stored=stored)
        elif key == "lag_max":
            total[key] = max(total.get(key, 0.0), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


# --- contributions of labelled rows --------------------------------------------------------------

#: The keys of ROC score bins (and ECE bins), made once.
_BIN_KEYS = np.array([str(b) for b in range(AUC_BINS + 1)], dtype=object)


def add_cells(total: dict[str, float | int], cells: Mapping[str, float | int]) -> None:
    """Add flat ``cells`` (path -> number) into ``total`` in place."""
    if total.keys().isdisjoint(cells):
        total.update(cells)
        return
    for path, value in cells.items():
        total[path] = total.get(path, 0) + value


def _label_codes(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct labels (as strings, in order of appearance) and each row's position
    among them: hashed (pandas), several times faster than sorting Python strings."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    labels = [str(v) for v in uniques.tolist()]
    if len(set(labels)) < len(labels):  # values alike as strings (1 and "1"): one label
        merged, positions = _label_codes(np.array(labels, dtype=object))
        return merged, positions[codes]
    return labels, codes.astype(np.int64, copy=False)


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, sign: int) -> dict[str, dict[str, int]]:
    true_labels, true_codes = _label_codes(y_true)
    pred_labels, pred_codes = _label_codes(y_pred)
    width = max(len(pred_labels), 1)
    counts = np.bincount(true_codes * width + pred_codes, minlength=len(true_labels) * width)
    out: dict[str, dict[str, int]] = {}
    for pair in np.flatnonzero(counts).tolist():
        t, p = divmod(pair, width)
        out.setdefault(true_labels[t], {})[pred_labels[p]] = sign * int(counts[pair])
    return out


def _truth_codes(y_true: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each label's column in ``classes`` (-1: a label outside them)."""
    index = {cls: i for i, cls in enumerate(classes)}
    labels, codes = _label_codes(y_true)
    columns = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
    truth: np.ndarray = columns[codes]
    return truth


def _probability_sums(truth: np.ndarray, proba: np.ndarray, sign: int) -> Stats:
    """Log loss, Brier score and calibration (ECE) sums of rows with probabilities."""
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
    return {
        "np": sign * len(truth),
        "ll": sign * float(-np.log(np.clip(p_true, EPS, 1 - EPS)).sum()),
        "br": sign * float(((proba - onehot) ** 2).sum()),
        "ece": ece,
    }


def _auc_histograms(
    truth: np.ndarray, proba: np.ndarray, classes: list[str]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per scored class, the counts of its positive and of its negative rows in each of
    the ``AUC_BINS + 1`` score bins (binary: the positive class's score is all ROC AUC
    needs)."""
    scored = [class_order(classes)[-1]] if len(classes) == 2 else classes
    width = AUC_BINS + 1
    out = []
    for cls in scored:
        k = classes.index(cls)
        codes = np.rint(proba[:, k] * AUC_BINS).astype(np.int64)
        both = np.bincount(codes + width * (truth != k), minlength=2 * width)
        out.append((cls, both[:width], both[width:]))
    return out


def _auc_stats(truth: np.ndarray, proba: np.ndarray, classes: list[str], sign: int) -> Stats:
    auc: dict[str, dict[str, dict[str, int]]] = {}
    for cls, positive, negative in _auc_histograms(truth, proba, classes):
        histogram: dict[str, dict[str, int]] = {}
        for side, counts in (("p", positive), ("n", negative)):
            filled = np.flatnonzero(counts)
            for b, count in zip(_BIN_KEYS[filled].tolist(), counts[filled].tolist(), strict=True):
                histogram.setdefault(b, {})[side] = sign * count
        auc[cls] = histogram
    return auc


@functools.lru_cache(maxsize=64)
def _auc_paths(classes: tuple[str, ...], cls: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = f"s.auc.{escape(cls)}."
    return (
        np.array([f"{prefix}{b}.p" for b in _BIN_KEYS.tolist()], dtype=object),
        np.array([f"{prefix}{b}.n" for b in _BIN_KEYS.tolist()], dtype=object),
    )


def _auc_cells(
    total: dict[str, float | int],
    truth: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    sign: int,
) -> None:
    """:func:`_auc_stats` added into flat paths, without the nested documents between."""
    for cls, positive, negative in _auc_histograms(truth, proba, classes):
        for paths, counts in zip(
            _auc_paths(tuple(classes), cls), (positive, negative), strict=True
        ):
            filled = np.flatnonzero(counts)
            add_cells(
                total,
                dict(zip(paths[filled].tolist(), (sign * counts[filled]).tolist(), strict=True)),
            )


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
        truth = _truth_codes(y_true, classes)
        stats.update(_probability_sums(truth, proba, sign))
        stats["auc"] = _auc_stats(truth, proba, classes, sign)
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
class Part:
    """Labelled rows' effect on their documents, as columns: ``sign`` +1 adds the
    (prediction, label) rows, -1 takes replaced labels' rows out again. ``keys[i]`` names
    row ``i``'s document (an hour, or a drift run's id); ``proba`` rows of NaN are
    predictions recorded without probabilities; ``first`` marks predictions that had no
    label before (they count towards the labelled predictions)."""

    keys: np.ndarray
    y_pred: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray | None
    lag: np.ndarray
    sign: int
    first: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Part:
        return Part(
            self.keys[rows],
            self.y_pred[rows],
            self.y_true[rows],
            None if self.proba is None else self.proba[rows],
            self.lag[rows],
            self.sign,
            None if self.first is None else self.first[rows],
        )


Key = TypeVar("Key", int, str)


def increments(
    parts: Iterable[Part], regression: bool, classes: list[str], shift: float
) -> tuple[dict[Any, dict[str, float | int]], dict[Any, float]]:
    """The ``$inc`` of each document the parts' rows touch, and its longest label lag."""
    totals: dict[Any, dict[str, float | int]] = {}
    lag_max: dict[Any, float] = {}
    for part in parts:
        if not len(part.keys):
            continue
        found, inverse = np.unique(part.keys, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(found) + 1))
        for k, key in enumerate(found.tolist()):
            rows = order[bounds[k] : bounds[k + 1]]
            _add_rows(totals.setdefault(key, {}), part.take(rows), regression, classes, shift)
            if part.sign > 0:
                lag_max[key] = max(lag_max.get(key, 0.0), float(part.lag[rows].max()))
    return totals, lag_max


def _add_rows(
    total: dict[str, float | int], part: Part, regression: bool, classes: list[str], shift: float
) -> None:
    """Add the rows' sums into ``total``, a document's flat paths (its sums under ``s.``)."""
    sign = part.sign
    if regression:
        add_cells(total, flatten(regression_stats(part.y_true, part.y_pred, shift, sign), "s."))
    else:
        with_proba = (
            np.zeros(len(part.keys), dtype=bool)
            if part.proba is None
            else ~np.isnan(part.proba[:, 0])
        )
        for mask, proba in ((with_proba, part.proba), (~with_proba, None)):
            if not mask.any():
                continue
            y_true = part.y_true[mask]
            add_cells(total, flatten({"cm": _confusion(y_true, part.y_pred[mask], sign)}, "s."))
            if proba is not None and len(classes):
                truth = _truth_codes(y_true, classes)
                add_cells(total, flatten(_probability_sums(truth, proba[mask], sign), "s."))
                _auc_cells(total, truth, proba[mask], classes, sign)
    n_lab = 0 if part.first is None else int(part.first.sum())
    add_cells(total, {"n_lab": sign * n_lab, "lag_sum": sign * float(part.lag.sum())})


# --- contributions of recorded predictions -------------------------------------------------------


def prediction_increments(
    keys: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[str]
) -> dict[int, dict[str, float | int]]:
    """The ``$inc`` of each document (hour, or run) the recorded predictions add to:
    ``keys[i]`` names row ``i``'s."""
    found, counts = np.unique(keys, return_counts=True)
    increments: dict[int, dict[str, float | int]] = {
        int(k): {"n_pred": int(c)} for k, c in zip(found, counts, strict=True)
    }
    if proba is not None and len(classes) == 2:
        _add_scores(increments, keys, y_pred, proba, classes)
    if proba is not None and len(classes) > 2:
        _add_class_scores(increments, keys, y_pred, proba, classes)
    return increments


def _add_scores(
    increments: dict[int, dict[str, float | int]],
    hours: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
) -> None:
    """Counts of predictions by hour, predicted class and positive-class score bin: what
    the estimated accuracy (:mod:`.cbpe`) is computed from, labels or not."""
    positive = class_order(classes)[-1]
    bins = np.rint(proba[:, classes.index(positive)] * AUC_BINS).astype(np.int64)
    for hour, mask in by_hour(hours):
        flat = flatten({"e": _pair_counts(y_pred[mask], bins[mask])})
        increments[hour].update(flat)


def _add_class_scores(
    increments: dict[int, dict[str, float | int]],
    hours: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
) -> None:
    """Multiclass CBPE (:mod:`.estimation`): per hour and class, counts of predictions by
    the class's raw probability, predicted as the class or not; calibrated when read."""
    for hour, mask in by_hour(hours):
        counts = estimation.class_score_counts(y_pred[mask], proba[mask], classes)
        increments[hour].update(flatten({"m": counts}))


def _pair_counts(labels: np.ndarray, bins: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for label in np.unique(labels):
        values, counts = np.unique(bins[labels == label], return_counts=True)
        out[str(label)] = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
    return out
