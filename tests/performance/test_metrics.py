"""Every performance metric, computed from window statistics, equals scikit-learn's on the
same rows: binary, multiclass and regression data, ties, single-class windows and missing
probabilities (which give a reason, never an exception)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from drift_backend.performance.metrics import (
    AUC_BINS,
    ECE_BINS,
    classification_metrics,
    regression_metrics,
)
from drift_backend.performance.windows import add_into, classification_stats, regression_stats
from sklearn import metrics as skm


def _proba(rng: np.random.Generator, n: int, k: int, y: np.ndarray) -> np.ndarray:
    """Probabilities that lean towards ``y``, on the AUC grid (so ties occur and the
    histogram AUC is exact)."""
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p = np.round(p * AUC_BINS) / AUC_BINS
    # Rows still sum to 1 (within rounding): the last column takes the rest, on the grid too.
    p[:, -1] = np.round((1.0 - p[:, :-1].sum(axis=1)) * AUC_BINS) / AUC_BINS
    return np.clip(p, 0.0, 1.0)


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    """Top-label ECE, written the textbook way (no scikit-learn counterpart)."""
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    total = 0.0
    for b in range(ECE_BINS):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return total


def _classification(y: np.ndarray, pred: np.ndarray, p: np.ndarray | None, k: int) -> Any:
    classes = [str(c) for c in range(k)]
    # Two halves added up, as windows are: the sums must not depend on the split.
    half = len(y) // 2
    stats: dict[str, Any] = {}
    for part in (slice(0, half), slice(half, None)):
        add_into(
            stats,
            classification_stats(
                y[part].astype(str),
                pred[part].astype(str),
                None if p is None else p[part],
                classes if p is not None else [],
            ),
        )
    return classification_metrics(stats, classes if p is not None else [])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    y = rng.integers(0, 2, n)
    p = _proba(rng, n, 2, y)
    pred = p.argmax(axis=1)
    out, labels, matrix = _classification(y, pred, p, 2)
    assert labels == ["0", "1"]
    assert matrix == skm.confusion_matrix(y, pred).tolist()
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert out["precision"].value == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"].value == pytest.approx(skm.recall_score(y, pred))
    assert out["f1"].value == pytest.approx(skm.f1_score(y, pred))
    for avg in ("macro", "weighted"):
        assert out[f"precision_{avg}"].value == pytest.approx(
            skm.precision_score(y, pred, average=avg)
        )
        assert out[f"recall_{avg}"].value == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert out[f"f1_{avg}"].value == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert out["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-12)
    assert out["log_loss"].value == pytest.approx(skm.log_loss(y, p))
    assert out["brier"].value == pytest.approx(skm.brier_score_loss(y, p[:, 1]))
    assert out["ece"].value == pytest.approx(_ece(y, p))


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 800, 4
    y = rng.integers(0, k, n)
    p = _proba(rng, n, k, y)
    pred = p.argmax(axis=1)
    pred[:5] = (pred[:5] + 1) % k  # some predictions disagree with the probabilities
    out, _labels, matrix = _classification(y, pred, p, k)
    assert matrix == skm.confusion_matrix(y, pred).tolist()
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert out["precision"].value is None
    assert out["precision"].reason
    for avg in ("macro", "weighted"):
        assert out[f"precision_{avg}"].value == pytest.approx(
            skm.precision_score(y, pred, average=avg)
        )
        assert out[f"recall_{avg}"].value == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert out[f"f1_{avg}"].value == pytest.approx(skm.f1_score(y, pred, average=avg))
    expected_auc = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert out["roc_auc"].value == pytest.approx(expected_auc, abs=1e-12)
    assert out["log_loss"].value == pytest.approx(skm.log_loss(y, p))
    assert out["brier"].value == pytest.approx(skm.brier_score_loss(y, p))
    assert out["ece"].value == pytest.approx(_ece(y, p))


def test_zero_division_and_absent_classes_as_sklearn() -> None:
    """A class never predicted: its precision is 0 (scikit-learn's zero_division)."""
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    pred = np.array([0, 0, 0, 2, 0, 0, 2])
    out, _, _ = _classification(y, pred, None, 3)
    for avg in ("macro", "weighted"):
        with pytest.warns(Warning, match="ill-defined"):
            expected = skm.precision_score(y, pred, average=avg)
        assert out[f"precision_{avg}"].value == pytest.approx(expected)
        assert out[f"f1_{avg}"].value == pytest.approx(skm.f1_score(y, pred, average=avg))


def test_single_class_window_and_missing_probabilities() -> None:
    y = np.ones(20, dtype=int)
    rng = np.random.default_rng(3)
    p = _proba(rng, 20, 2, y)
    out, _, _ = _classification(y, p.argmax(axis=1), p, 2)
    assert out["roc_auc"].value is None
    assert "one class" in (out["roc_auc"].reason or "")
    assert out["log_loss"].value == pytest.approx(skm.log_loss(y, p, labels=[0, 1]))
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))

    no_proba, _, _ = _classification(y, y, None, 2)
    for name in ("roc_auc", "log_loss", "brier", "ece"):
        assert no_proba[name].value is None
        assert no_proba[name].reason == "no predicted probabilities"


def test_no_labels_is_not_computable() -> None:
    out, labels, matrix = classification_metrics({}, ["0", "1"])
    assert labels == []
    assert matrix == []
    assert all(m.value is None and m.reason == "no labelled predictions" for m in out.values())
    assert all(m.value is None for m in regression_metrics({}).values())


def test_multiclass_window_missing_a_class_says_which() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 100)  # class 2 never occurs
    p = _proba(rng, 100, 3, y)
    out, _, _ = _classification(y, p.argmax(axis=1), p, 3)
    present = [skm.roc_auc_score(y == c, p[:, c]) for c in (0, 1)]
    assert out["roc_auc"].value == pytest.approx(np.mean(present))
    assert "left out: ['2']" in (out["roc_auc"].reason or "")


def test_auc_of_continuous_scores_within_its_bound() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 2000)
    score = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    p = np.column_stack([1 - score, score])
    out, _, _ = _classification(y, (score > 0.5).astype(int), p, 2)
    exact = skm.roc_auc_score(y, score)
    auc = out["roc_auc"]
    assert auc.value is not None
    assert auc.bound is not None
    assert abs(auc.value - exact) <= auc.bound


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(1000.0, 5.0, 300)  # a large mean: R² must not lose its digits
    y[:3] = 0.0  # MAPE's eps
    pred = y + rng.normal(0.5, 2.0, 300)
    pred[10:20] = np.round(pred[10:20])  # ties
    stats: dict[str, Any] = {}
    for part in (slice(0, 100), slice(100, None)):
        add_into(stats, regression_stats(y[part], pred[part], shift=float(pred[:50].mean())))
    out = regression_metrics(stats)
    assert out["mean_error"].value == pytest.approx(np.mean(pred - y))
    assert out["mae"].value == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert out["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert out["r2"].value == pytest.approx(skm.r2_score(y, pred), rel=1e-9)


def test_regression_edge_cases() -> None:
    one = regression_metrics(regression_stats(np.array([1.0]), np.array([2.0]), 0.0))
    assert one["mae"].value == 1.0
    assert one["r2"].value is None
    assert one["r2"].reason
    constant = np.full(5, 3.0)
    exact = regression_metrics(regression_stats(constant, constant, 3.0))
    assert exact["r2"].value == skm.r2_score(constant, constant)
    off = regression_metrics(regression_stats(constant, constant + 1, 3.0))
    assert off["r2"].value == skm.r2_score(constant, constant + 1)
