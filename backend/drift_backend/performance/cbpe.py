"""Estimated accuracy before labels arrive (confidence-based performance estimation, CBPE;
pure: numpy, no I/O). Binary models with probabilities only, for now.

Assumptions (``docs/performance.md``): the model's probabilities are calibrated — after the
isotonic calibration fitted on the labelled reference, used only when it lowers the
calibration error on held-out reference rows — and the relation between inputs and labels
has not changed (no concept shift). Then a prediction is right with probability ``q`` (the
calibrated probability of the predicted class), so a window's expected accuracy is the mean
of ``q`` and its spread comes from the sum of independent Bernoulli draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from drift_backend.performance.metrics import AUC_BINS

#: Bins of the reliability curve the calibration error is measured on.
RELIABILITY_BINS = 10
Z95 = 1.959963984540054


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """The non-decreasing least-squares fit of ``y`` on ``x`` (pool adjacent violators over
    the distinct ``x``, ties weighted by their count), as the knots of a piecewise-linear
    map: scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``."""
    xs, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y.astype(np.float64)) / counts
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for mean, weight in zip(means, counts, strict=True):
        values.append(float(mean))
        weights.append(float(weight))
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            values[-2:] = [(values[-2] * weights[-2] + values[-1] * weights[-1]) / w]
            weights[-2:] = [w]
            sizes[-2:] = [sizes[-2] + sizes[-1]]
    # A block's inner points add nothing to the interpolation: its ends carry it (and keep
    # the stored map small for a large reference).
    ends = np.cumsum(sizes)
    starts = ends - np.array(sizes)
    knots_x: list[float] = []
    knots_y: list[float] = []
    for first, last, value in zip(starts, ends - 1, values, strict=True):
        for index in (first, last) if last > first else (first,):
            knots_x.append(float(xs[index]))
            knots_y.append(value)
    return knots_x, knots_y


def calibrate(calibration: Mapping[str, Any] | None, p: np.ndarray) -> np.ndarray:
    if not calibration:
        return p
    mapped: np.ndarray = np.interp(p, calibration["x"], calibration["y"])
    return mapped


def calibration_error(y: np.ndarray, p: np.ndarray) -> float:
    """Reliability error of probabilities ``p`` of the positive class against ``y`` (0/1)."""
    bins = np.minimum((p * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += abs(float(y[mask].mean()) - float(p[mask].mean())) * mask.sum()
    return total / len(y)


def fit(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """The calibration for a reference's positive-class probabilities ``p`` and labels
    ``y`` (0/1): isotonic when, fitted on one half and scored on the other (both ways), it
    lowers the calibration error; else none (``x`` empty)."""
    halves = (slice(0, None, 2), slice(1, None, 2))
    raw, calibrated = 0.0, 0.0
    for fit_on, score_on in (halves, halves[::-1]):
        if len(y[fit_on]) == 0 or len(y[score_on]) == 0:
            return {"x": [], "y": [], "used": False}
        xs, ys = isotonic(p[fit_on], y[fit_on])
        raw += calibration_error(y[score_on], p[score_on])
        calibrated += calibration_error(y[score_on], np.interp(p[score_on], xs, ys))
    if calibrated < raw:
        xs, ys = isotonic(p, y)
        return {"x": xs, "y": ys, "used": True}
    return {"x": [], "y": [], "used": False}


def expected_accuracy(
    histograms: Mapping[str, Mapping[str, int]], positive: str, calibration: Mapping[str, Any]
) -> dict[str, Any]:
    """From counts of predictions by (predicted class, positive-class score bin): the
    estimated accuracy and its 95 % band (normal approximation of the Poisson-binomial)."""
    n = 0
    mean = 0.0
    variance = 0.0
    used = calibration if calibration.get("used") else None
    for predicted, bins in histograms.items():
        keys = np.array([int(b) for b in bins], dtype=np.float64)
        counts = np.array(list(bins.values()), dtype=np.float64)
        q = calibrate(used, keys / AUC_BINS)
        right = q if predicted == positive else 1.0 - q
        n += int(counts.sum())
        mean += float(np.sum(counts * right))
        variance += float(np.sum(counts * right * (1.0 - right)))
    if n == 0:
        return {"value": None, "low": None, "high": None, "reason": "no probabilities"}
    value = mean / n
    half = Z95 * math.sqrt(variance) / n
    return {
        "value": value,
        "low": max(0.0, value - half),
        "high": min(1.0, value + half),
        "reason": None,
    }
