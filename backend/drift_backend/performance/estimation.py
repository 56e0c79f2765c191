"""Estimated precision, recall, F1 and ROC AUC (binary and multiclass), and multiclass
accuracy, before labels arrive (pure: numpy, no I/O). Binary accuracy is :mod:`.cbpe`'s.

The method is NannyML's confidence-based performance estimation (CBPE,
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html): when a
model's (calibrated) probability ``q`` of a class is right, a row predicted as that class is
a true positive with probability ``q`` and a false positive with ``1 - q``, and a row
predicted otherwise is a false negative with probability ``q``. Summing gives the *expected*
confusion matrix, and the metrics are computed from its cells. ROC AUC is that of the
expected ROC curve: each row counts as a positive of weight ``q`` and a negative of weight
``1 - q`` at its raw score (NannyML's estimated TPR and FPR per threshold).

Differences from NannyML, and why:

- The rows are not kept: a stored hour holds, per class, counts of rows by the class's raw
  probability rounded to a grid (``1/AUC_BINS`` binary, ``1/MULTICLASS_BINS`` multiclass,
  coarser because a ten-class hour would otherwise take ~20,000 counters per prediction
  batch), split by whether the row was predicted as the class. The calibration (fitted on
  the reference later than predictions arrive) is applied to the grid when read. The map is
  monotone, so each bin's rows have calibrated probabilities between the map at the bin's
  two edges: :attr:`Estimate.exact_low` and :attr:`Estimate.exact_high` bound the value the
  same formula gives on the raw rows (ROC AUC: exact when the scores are on the grid).
- Multiclass calibrated probabilities are not normalised per row (NannyML divides each row
  by its sum): the hour keeps the classes' probabilities one class at a time, not jointly.
  Each class's map is fitted one-vs-rest on the reference, so each is calibrated on its own.
- The band is a normal approximation (95 %) of the realised metric's spread when the labels
  are independent draws with probabilities ``q``: exact variance of a sum of Bernoullis for
  accuracy and precision (means of such draws), the delta method for the ratios (recall,
  F1, ROC AUC). Macro precision adds its classes' variances (each row counts for its
  predicted class only); macro recall, F1 and ROC AUC add second moments instead, an upper
  bound that holds whatever the rows' joint probabilities (see :func:`_macro`). The band
  leaves out the calibration's own error (a finite reference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift_backend.performance.cbpe import Z95, calibrate
from drift_backend.performance.metrics import AUC_BINS, class_order

#: Grid of the per-class score counts a multiclass hour keeps (see the module docstring).
MULTICLASS_BINS = 100
#: Keys of a class's counts: rows predicted as the class, and the others.
CHOSEN, OTHER = "t", "f"

Counts = Mapping[str, Mapping[str, int]]


# --- what an hour keeps ---------------------------------------------------------------------------


def class_score_counts(
    y_pred: np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """Per class (``proba`` columns in the order of ``classes``): counts of rows by the
    class's raw probability on the ``MULTICLASS_BINS`` grid, predicted as it or not."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for k, cls in enumerate(classes):
        codes = np.rint(proba[:, k] * MULTICLASS_BINS).astype(np.int64)
        chosen = (y_pred == cls).astype(np.int64)
        keys, counts = np.unique(codes * 2 + chosen, return_counts=True)
        sides: dict[str, dict[str, int]] = {}
        for key, count in zip(keys, counts, strict=True):
            code, side = divmod(int(key), 2)
            sides.setdefault(CHOSEN if side else OTHER, {})[str(code)] = int(count)
        out[cls] = sides
    return out


# --- estimates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """``value`` with standard deviation ``sd`` (the band is ``value ± 1.96 sd``); the same
    formula on the raw rows lies in [``exact_low``, ``exact_high``] (rounding to the grid;
    None for ROC AUC, exact only for scores on the grid)."""

    value: float | None
    sd: float = 0.0
    exact_low: float | None = None
    exact_high: float | None = None
    reason: str | None = None
    #: The value's linearised second moment (sum over rows of the expected squared change
    #: a row's label makes): an upper bound of its variance that stays one when classes
    #: are averaged, whatever the rows' joint probabilities (see :func:`_macro`).
    moment: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        if self.value is None:
            return {"value": None, "low": None, "high": None, "reason": self.reason}
        half = Z95 * self.sd
        return {
            "value": self.value,
            "low": max(0.0, self.value - half),
            "high": min(1.0, self.value + half),
            "reason": self.reason,
        }


def _missing(reason: str) -> Estimate:
    return Estimate(None, reason=reason)


@dataclass(frozen=True)
class _Scores:
    """One class's counts on the grid, ascending: ``chosen`` rows were predicted as the
    class; ``q`` is the calibrated probability at each bin's centre, ``lo``/``hi`` at its
    edges."""

    chosen: np.ndarray
    other: np.ndarray
    q: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def total(self) -> np.ndarray:
        total: np.ndarray = self.chosen + self.other
        return total


def _scores(
    chosen: Mapping[str, int],
    other: Mapping[str, int],
    resolution: int,
    calibration: Mapping[str, Any] | None,
) -> _Scores:
    keys = sorted(set(chosen) | set(other), key=int)
    codes = np.array([int(k) for k in keys], dtype=np.float64)
    used = calibration if calibration and calibration.get("used") else None

    def at(x: np.ndarray) -> np.ndarray:
        mapped: np.ndarray = np.clip(calibrate(used, np.clip(x, 0.0, 1.0)), 0.0, 1.0)
        return mapped

    return _Scores(
        chosen=np.array([chosen.get(k, 0) for k in keys], dtype=np.float64),
        other=np.array([other.get(k, 0) for k in keys], dtype=np.float64),
        q=at(codes / resolution),
        lo=at((codes - 0.5) / resolution),
        hi=at((codes + 0.5) / resolution),
    )


@dataclass(frozen=True)
class _Cells:
    """The expected confusion-matrix cells of one class against the rest; ``var_*`` their
    variances; ``*_lo``/``*_hi`` bound them for the raw rows."""

    tp: float
    fn: float
    n_chosen: float
    var_tp: float
    var_fn: float
    tp_lo: float
    tp_hi: float
    fn_lo: float
    fn_hi: float


def _cells(s: _Scores) -> _Cells:
    return _Cells(
        tp=float(np.sum(s.chosen * s.q)),
        fn=float(np.sum(s.other * s.q)),
        n_chosen=float(s.chosen.sum()),
        var_tp=float(np.sum(s.chosen * s.q * (1 - s.q))),
        var_fn=float(np.sum(s.other * s.q * (1 - s.q))),
        tp_lo=float(np.sum(s.chosen * s.lo)),
        tp_hi=float(np.sum(s.chosen * s.hi)),
        fn_lo=float(np.sum(s.other * s.lo)),
        fn_hi=float(np.sum(s.other * s.hi)),
    )


def _div(num: float, den: float) -> float:
    """``num / den``, 0 when ``den`` is 0 (scikit-learn's ``zero_division`` default)."""
    return num / den if den > 0 else 0.0


def precision(c: _Cells) -> Estimate:
    """TP / (TP + FP): the rows predicted as the class are fixed, so a mean of Bernoullis."""
    n = c.n_chosen
    return Estimate(_div(c.tp, n), _div(math.sqrt(c.var_tp), n), _div(c.tp_lo, n), _div(c.tp_hi, n))


def recall(c: _Cells) -> Estimate:
    """TP / (TP + FN), TP and FN sums over different rows (independent): delta method."""
    a, b = c.tp, c.fn
    if a + b <= 0:
        return Estimate(0.0, 0.0, 0.0, 0.0)
    var = (b**2 * c.var_tp + a**2 * c.var_fn) / (a + b) ** 4
    return Estimate(
        a / (a + b),
        math.sqrt(var),
        _div(c.tp_lo, c.tp_lo + c.fn_hi),
        _div(c.tp_hi, c.tp_hi + c.fn_lo),
        moment=(b**2 * c.tp + a**2 * c.fn) / (a + b) ** 4,
    )


def f1(c: _Cells) -> Estimate:
    """2 TP / (2 TP + FP + FN) = 2 TP / (TP + predicted + FN): delta method."""
    a, b, n = c.tp, c.fn, c.n_chosen
    d = a + n + b
    if d <= 0:
        return Estimate(0.0, 0.0, 0.0, 0.0)
    var = (4 * (n + b) ** 2 * c.var_tp + 4 * a**2 * c.var_fn) / d**4
    return Estimate(
        2 * a / d,
        math.sqrt(var),
        _div(2 * c.tp_lo, c.tp_lo + n + c.fn_hi),
        _div(2 * c.tp_hi, c.tp_hi + n + c.fn_lo),
        moment=(4 * (n + b) ** 2 * c.tp + 4 * a**2 * c.fn) / d**4,
    )


def roc_auc(s: _Scores) -> Estimate:
    """The area under the expected ROC curve: per bin, expected positives ``P = n q`` and
    negatives ``N = n (1 - q)``, ranked by the raw score (ties count one half — the
    trapezoid NannyML integrates). Band: delta method on the bins' positive counts
    (independent binomials ``n, q``). Equal to the formula on the rows when their scores
    are on the grid; otherwise rows in one bin count as tied, so no ``exact_*`` bound."""
    total = s.total
    pos = total * s.q
    neg = total - pos
    pt, nt = float(pos.sum()), float(neg.sum())
    if pt <= 1e-12 or nt <= 1e-12:
        return _missing("no expected positives or no expected negatives")
    below = np.cumsum(neg) - neg
    area = float(np.sum(pos * (below + 0.5 * neg)))
    pairs = pt * nt
    above = pt - np.cumsum(pos)
    d_area = below + 0.5 * neg - 0.5 * pos - above
    grad = (d_area * pairs - area * (nt - pt)) / pairs**2
    var = float(np.sum(grad**2 * total * s.q * (1 - s.q)))
    value = area / pairs
    moment = float(np.sum(grad**2 * total * s.q))
    return Estimate(value, math.sqrt(var), moment=moment)


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if len(known) == len(values) else None


def _macro(parts: list[Estimate], skipped: list[str], *, joint: bool) -> Estimate:
    """Mean over classes. ``joint``: a row's label moves several classes' values at once
    (its label is one class, so not another): the classes' second moments are summed,
    an upper bound of the mean's variance (the rows' joint probabilities, which the exact
    covariances need, are not stored). Else the classes are independent (precision: each
    row counts only for its predicted class) and their variances add."""
    present = [p for p in parts if p.value is not None]
    if not present:
        return _missing(parts[0].reason or "not computable" if parts else "no classes")
    k = len(present)
    reason = f"averaged over the classes it applies to; left out: {skipped}" if skipped else None
    return Estimate(
        sum(p.value for p in present if p.value is not None) / k,
        math.sqrt(sum(p.moment if joint else p.sd**2 for p in present)) / k,
        _mean_or_none([p.exact_low for p in present]),
        _mean_or_none([p.exact_high for p in present]),
        reason,
    )


# --- per model -----------------------------------------------------------------------------------


def binary(
    counts: Counts, classes: Sequence[str], calibration: Mapping[str, Any] | None
) -> dict[str, Estimate]:
    """From an hour's ``e`` counts (predicted class -> positive-class score bin on the
    ``AUC_BINS`` grid -> rows): precision, recall, F1 of the positive class and ROC AUC."""
    positive = class_order(classes)[-1]
    chosen: dict[str, int] = {}
    other: dict[str, int] = {}
    for predicted, bins in counts.items():
        side = chosen if predicted == positive else other
        for code, n in bins.items():
            side[code] = side.get(code, 0) + int(n)
    if not chosen and not other:
        reason = "no probabilities"
        return {name: _missing(reason) for name in ("precision", "recall", "f1", "roc_auc")}
    s = _scores(chosen, other, AUC_BINS, calibration)
    c = _cells(s)
    return {"precision": precision(c), "recall": recall(c), "f1": f1(c), "roc_auc": roc_auc(s)}


def multiclass(
    counts: Mapping[str, Counts],
    classes: Sequence[str],
    calibrations: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Estimate]:
    """From an hour's ``m`` counts (class -> chosen/other -> score bin -> rows, see
    :func:`class_score_counts`): accuracy, macro precision, recall, F1 and one-vs-rest ROC
    AUC, with the per-class calibrations (in the order of ``classes``)."""
    names = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
    scores: list[_Scores] = []
    for k, cls in enumerate(classes):
        sides = counts.get(cls, {})
        calibration = calibrations[k] if calibrations and k < len(calibrations) else None
        scores.append(
            _scores(sides.get(CHOSEN, {}), sides.get(OTHER, {}), MULTICLASS_BINS, calibration)
        )
    n = float(scores[0].total.sum()) if scores else 0.0
    if n == 0:
        return {name: _missing("no probabilities") for name in names}
    cells = [_cells(s) for s in scores]
    # A row is right when its label is its predicted class: TP summed over the classes.
    right = sum(c.tp for c in cells)
    var = sum(c.var_tp for c in cells)
    out = {
        "accuracy": Estimate(
            right / n,
            math.sqrt(var) / n,
            sum(c.tp_lo for c in cells) / n,
            sum(c.tp_hi for c in cells) / n,
        )
    }
    out["precision_macro"] = _macro([precision(c) for c in cells], [], joint=False)
    out["recall_macro"] = _macro([recall(c) for c in cells], [], joint=True)
    out["f1_macro"] = _macro([f1(c) for c in cells], [], joint=True)
    aucs = [roc_auc(s) for s in scores]
    skipped = [cls for cls, a in zip(classes, aucs, strict=True) if a.value is None]
    out["roc_auc"] = _macro(aucs, skipped, joint=True)
    return out
