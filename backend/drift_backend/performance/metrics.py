"""Model performance metrics from sufficient statistics (numpy, no I/O).

A window's statistics (:mod:`.windows` builds and sums them) are counts and sums that add up
across batches and late labels, so a window is updated with ``$inc`` and its metrics are
computed from the sums alone. Every metric here equals scikit-learn's on the same rows
(``tests/performance/test_metrics.py``), with two documented exceptions of form, not value:

- ROC AUC is computed from scores rounded to 1/``AUC_BINS`` (a histogram per class): exact
  for scores on that grid, otherwise within the ``bound`` reported beside the value;
- expected calibration error has no scikit-learn counterpart: ``ECE_BINS`` equal-width bins
  of the top-class probability, ``sum_b n_b/N * |accuracy_b - confidence_b|``.

A metric that cannot be computed (no labels, one class only, no probabilities) is ``None``
with the reason, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Resolution of the score histograms ROC AUC is computed from.
AUC_BINS = 1000
#: Equal-width bins of the top-class probability for the expected calibration error.
ECE_BINS = 10
#: scikit-learn clips probabilities to [EPS, 1 - EPS] for the log loss, and bounds MAPE's
#: denominator below by it.
EPS = float(np.finfo(np.float64).eps)

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_METRICS = ("mean_error", "mae", "rmse", "mape", "r2")


@dataclass(frozen=True)
class Metric:
    value: float | None
    reason: str | None = None
    #: For approximations: the value is at most this far from the exact one.
    bound: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "bound": self.bound}


def missing(reason: str) -> Metric:
    return Metric(None, reason)


def class_order(labels: Iterable[str]) -> list[str]:
    """Class labels in their natural order: numerically when they all are integers
    (``"2" < "10"``), else as strings. The positive class of a binary model is the last."""
    unique = set(labels)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


# --- classification ----------------------------------------------------------------------------


def confusion(stats: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """The labels present (true or predicted) and the matrix, rows true, columns predicted
    (scikit-learn's ``confusion_matrix`` layout)."""
    cells: Mapping[str, Mapping[str, int]] = stats.get("cm", {})
    # Cells a changed label took back to 0 name no class of the window.
    present = [(t, p) for t, row in cells.items() for p, count in row.items() if count]
    labels = class_order([t for t, _ in present] + [p for _, p in present])
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true, pred in present:
        matrix[index[true], index[pred]] += int(cells[true][pred])
    return labels, matrix


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (scikit-learn's ``zero_division`` default)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _prf(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    return _ratio(tp, predicted), _ratio(tp, actual), _ratio(2 * tp, predicted + actual), actual


def auc_from_histogram(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC of scores given as counts per ascending score value: the probability that a
    positive outranks a negative, ties counting one half (Mann-Whitney)."""
    negatives_below = np.cumsum(negatives) - negatives
    pairs = float(positives.sum()) * float(negatives.sum())
    return float(np.sum(positives * (negatives_below + 0.5 * negatives)) / pairs)


def _auc_of(histogram: Mapping[str, Mapping[str, int]]) -> Metric:
    bins = sorted(histogram, key=int)
    pos = np.array([histogram[b].get("p", 0) for b in bins], dtype=np.float64)
    neg = np.array([histogram[b].get("n", 0) for b in bins], dtype=np.float64)
    if pos.sum() == 0 or neg.sum() == 0:
        return missing("only one class in y_true")
    ties = float(np.sum(pos * neg)) / (float(pos.sum()) * float(neg.sum()))
    return Metric(auc_from_histogram(pos, neg), bound=0.5 * ties if ties else None)


def roc_auc(stats: Mapping[str, Any], classes: list[str]) -> Metric:
    """Binary: the positive class's score. Multiclass: one-vs-rest, macro average over the
    classes that have both positives and negatives (all of them, as scikit-learn requires,
    or the reason names the ones left out)."""
    histograms: Mapping[str, Mapping[str, Mapping[str, int]]] = stats.get("auc", {})
    if not classes or not stats.get("np"):
        return missing("no predicted probabilities")
    if len(classes) <= 2:
        return _auc_of(histograms.get(class_order(classes)[-1], {}))
    values: list[Metric] = []
    left_out = []
    for cls in classes:
        metric = _auc_of(histograms.get(cls, {}))
        if metric.value is None:
            left_out.append(cls)
        else:
            values.append(metric)
    if not values:
        return missing("only one class in y_true")
    value = float(np.mean([m.value for m in values]))
    bounds = [m.bound or 0.0 for m in values]
    reason = f"one-vs-rest over the classes in y_true; left out: {left_out}" if left_out else None
    return Metric(value, reason, float(np.mean(bounds)) or None)


def classification_metrics(
    stats: Mapping[str, Any], classes: list[str]
) -> tuple[dict[str, Metric], list[str], list[list[int]]]:
    """The metrics, the confusion matrix's labels and the matrix, from a window's stats.

    ``classes`` are the model's probability columns in order (empty without probabilities).
    The model is binary when it knows at most two classes; its positive class is the last in
    :func:`class_order`."""
    labels, matrix = confusion(stats)
    n = int(matrix.sum())
    if n == 0:
        return (
            {name: missing("no labelled predictions") for name in CLASSIFICATION_METRICS},
            labels,
            matrix.tolist(),
        )
    out: dict[str, Metric] = {"accuracy": Metric(float(np.trace(matrix)) / n)}
    precision, recall, f1, actual = _prf(matrix)
    out["precision_macro"] = Metric(float(precision.mean()))
    out["recall_macro"] = Metric(float(recall.mean()))
    out["f1_macro"] = Metric(float(f1.mean()))
    weights = actual / actual.sum()
    out["precision_weighted"] = Metric(float(np.sum(precision * weights)))
    out["recall_weighted"] = Metric(float(np.sum(recall * weights)))
    out["f1_weighted"] = Metric(float(np.sum(f1 * weights)))
    known = class_order(set(classes) | set(labels))
    if len(known) <= 2:
        positive = known[-1]
        i = labels.index(positive) if positive in labels else None
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[name] = Metric(float(values[i]) if i is not None else 0.0)
    else:
        for name in ("precision", "recall", "f1"):
            out[name] = missing("multiclass: see the macro and weighted averages")
    with_proba = int(stats.get("np", 0))
    out["roc_auc"] = roc_auc(stats, classes)
    if with_proba == 0 or not classes:
        for name in ("log_loss", "brier", "ece"):
            out[name] = missing("no predicted probabilities")
    else:
        out["log_loss"] = Metric(float(stats.get("ll", 0.0)) / with_proba)
        # scikit-learn halves the binary Brier score (the positive class's squared error).
        scale = 2.0 if len(classes) == 2 else 1.0
        out["brier"] = Metric(float(stats.get("br", 0.0)) / with_proba / scale)
        bins: Mapping[str, Mapping[str, float]] = stats.get("ece", {})
        gap = sum(abs(float(b.get("k", 0)) - float(b.get("c", 0.0))) for b in bins.values())
        out["ece"] = Metric(gap / with_proba)
    return out, labels, matrix.tolist()


# --- regression --------------------------------------------------------------------------------


def regression_metrics(stats: Mapping[str, Any]) -> dict[str, Metric]:
    """From the sums ``n`` (rows), ``e`` (y_pred - y_true), ``a`` (absolute errors), ``s``
    (squared errors), ``m`` (absolute percentage errors), ``y`` and ``y2`` (y_true shifted by
    the model's constant, and its square: R² without cancellation)."""
    n = int(stats.get("n", 0))
    if n == 0:
        return {name: missing("no labelled predictions") for name in REGRESSION_METRICS}
    out = {
        "mean_error": Metric(float(stats["e"]) / n),
        "mae": Metric(float(stats["a"]) / n),
        "rmse": Metric(math.sqrt(max(float(stats["s"]), 0.0) / n)),
        "mape": Metric(float(stats["m"]) / n),
    }
    if n < 2:
        out["r2"] = missing("R² needs at least two labelled predictions")
        return out
    total = float(stats["y2"]) - float(stats["y"]) ** 2 / n
    residual = float(stats["s"])
    if total <= 1e-12 * max(abs(float(stats["y2"])), 1.0):
        # scikit-learn's force_finite: constant y_true scores 1 when predicted exactly, else 0.
        out["r2"] = Metric(1.0 if residual <= 0.0 else 0.0)
    else:
        out["r2"] = Metric(1.0 - residual / total)
    return out
