"""Estimated performance before labels (CBPE): on calibrated synthetic data each estimated
metric's band holds the realised value in at least 90 % of windows (binary and multiclass);
the isotonic calibration is fitted where it helps and left out where it does not; on a
concept shift the realised values depart from the estimates; the histogram form the server
keeps equals the expected-confusion-matrix formula on the raw rows within its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance import cbpe, estimation
from drift_backend.performance.metrics import AUC_BINS
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"


def test_isotonic_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = np.round(rng.random(300), 2)  # ties
    y = (rng.random(300) < x**2).astype(float)
    xs, ys = cbpe.isotonic(x, y)
    grid = np.linspace(0, 1, 101)
    expected = IsotonicRegression(out_of_bounds="clip").fit(x, y).predict(grid)
    assert np.interp(grid, xs, ys) == pytest.approx(expected, abs=1e-12)


def test_calibration_is_used_only_where_it_helps() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(4000)
    calibrated_y = (rng.random(4000) < p).astype(float)
    assert cbpe.fit(calibrated_y, p)["used"] is False
    skewed_y = (rng.random(4000) < p**3).astype(float)  # the scores are overconfident
    fitted = cbpe.fit(skewed_y, p)
    assert fitted["used"] is True
    after = cbpe.calibration_error(skewed_y, cbpe.calibrate(fitted, p))
    assert after < cbpe.calibration_error(skewed_y, p)


async def test_binary_estimates_hold_the_realised_values(patient: Api) -> None:
    api = patient
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(5)

    def scored(n: int) -> tuple[np.ndarray, np.ndarray]:
        raw = rng.random(n)
        return raw, (rng.random(n) < raw**2).astype(int)  # raw scores overconfident

    def columns(raw: np.ndarray) -> dict[str, np.ndarray]:
        return {"y_pred": (raw > 0.5).astype(int), "proba_0": 1 - raw, "proba_1": raw}

    raw, y = scored(10_000)  # a large reference: the band leaves out the calibration's error
    await post_table(
        api, base + "/performance-reference", pa.table({"y_true": y, **columns(raw)}), model="m"
    )
    start = datetime(2026, 6, 1, tzinfo=UTC)
    # Many small windows (the share inside the band is a share of windows), and larger
    # shifted ones (a departure shows beyond the band's width).
    hours, shifted = 90, 2
    hour = np.repeat(np.arange(hours), [100] * (hours - shifted) + [600] * shifted)
    raw, y = scored(len(hour))
    y = np.where(hour >= hours - shifted, 1 - y, y)  # a concept shift: the labels flip
    ids = [f"r{i}" for i in range(len(hour))]
    when = [start + timedelta(hours=int(h)) for h in hour]
    await post_table(
        api,
        base + "/predictions",
        pa.table({"id": ids, **columns(raw), "time": pa.array(when, pa.timestamp("ms", tz="UTC"))}),
        model="m",
    )
    for part in range(0, len(ids), 1000):
        await post_table(
            api,
            base + "/ground-truth",
            pa.table({"id": ids[part : part + 1000], "y_true": y[part : part + 1000]}),
            model="m",
        )
    windows = await _windows(api, base, start, hours)
    metrics = ("accuracy", "precision", "recall", "f1", "roc_auc")
    assert set(windows[0]["estimated"]) == {*metrics, "calibrated"}
    assert all(w["estimated"]["calibrated"] is True for w in windows)
    inside = _coverage(windows, metrics)
    for name in metrics:
        assert sum(inside[name][:-shifted]) >= 0.9 * (hours - shifted), name
        # After the shift the realised values leave the band...
        assert inside[name][-shifted:] == [False] * shifted, name
    # ... and the decision says so.
    assert [w["decision"]["degraded"] for w in windows[-shifted:]] == [True] * shifted


# --- the histogram form against the formula on the raw rows ---------------------------------------


def _direct(q: np.ndarray, chosen: np.ndarray) -> dict[str, float]:
    """NannyML's expected confusion matrix of one class on raw rows: ``q`` the calibrated
    probability of the class per row, ``chosen`` the rows predicted as it."""
    tp, fp, fn = q[chosen].sum(), (1 - q[chosen]).sum(), q[~chosen].sum()
    return {
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }


def _direct_auc(q: np.ndarray, scores: np.ndarray) -> float:
    """The expected ROC curve's area: every row a positive of weight q, a negative of 1 - q."""
    both = np.concatenate([np.ones(len(q)), np.zeros(len(q))])
    return float(
        roc_auc_score(both, np.concatenate([scores, scores]), sample_weight=np.r_[q, 1 - q])
    )


def _binary_counts(y_pred: np.ndarray, p: np.ndarray) -> dict[str, dict[str, int]]:
    """What a binary hour keeps (``e``): rows by predicted class and positive-class score."""
    codes = np.rint(p * AUC_BINS).astype(np.int64)
    out: dict[str, dict[str, int]] = {}
    for label in np.unique(y_pred):
        values, counts = np.unique(codes[y_pred == label], return_counts=True)
        out[str(label)] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    return out


@pytest.mark.parametrize("on_grid", [False, True])
def test_binary_histogram_form_equals_the_row_formula(on_grid: bool) -> None:
    rng = np.random.default_rng(11)
    reference = rng.random(4000)
    calibration = cbpe.fit((rng.random(4000) < reference**2).astype(float), reference)
    assert calibration["used"]
    p = rng.random(700)
    if on_grid:
        p = np.round(p, 3)
    y_pred = np.where(p > 0.4, "1", "0")
    estimates = estimation.binary(_binary_counts(y_pred, p), ["0", "1"], calibration)
    q = cbpe.calibrate(calibration, p)
    direct = _direct(q, y_pred == "1")
    direct["roc_auc"] = _direct_auc(q, p)
    for name, exact in direct.items():
        e = estimates[name]
        if on_grid:  # the grid is the rows' own resolution: equal up to float sums
            assert e.value == pytest.approx(exact, abs=1e-9), name
        elif name != "roc_auc":  # the documented bound: the calibration map at bin edges
            assert e.exact_low is not None
            assert e.exact_high is not None
            assert e.exact_low - 1e-12 <= exact <= e.exact_high + 1e-12, name
            assert e.exact_high - e.exact_low < 0.01, name


def _multiclass_rows(
    rng: np.random.Generator, n: int, k: int, temper: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities on the 1/``MULTICLASS_BINS`` grid, overconfident (``temper``) about
    the labels drawn from the true ones."""
    logits = rng.normal(0, 1.5, size=(n, k))
    true = np.exp(logits)
    true /= true.sum(axis=1, keepdims=True)
    sharp = np.exp(temper * logits)
    sharp /= sharp.sum(axis=1, keepdims=True)
    bins = estimation.MULTICLASS_BINS
    proba = np.array([rng.multinomial(bins, row) for row in sharp]) / bins
    labels = (true.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return proba, np.minimum(labels, k - 1)


def test_multiclass_histogram_form_equals_the_row_formula() -> None:
    rng = np.random.default_rng(12)
    classes = ["a", "b", "c", "d"]
    proba, labels = _multiclass_rows(rng, 4000, 4)
    calibrations = [cbpe.fit((labels == k).astype(float), proba[:, k]) for k in range(4)]
    assert any(c["used"] for c in calibrations)
    proba, _ = _multiclass_rows(rng, 800, 4)
    y_pred = np.array(classes, dtype=object)[proba.argmax(axis=1)]
    counts = estimation.class_score_counts(y_pred, proba, classes)
    estimates = estimation.multiclass(counts, classes, calibrations)
    q = np.column_stack(
        [cbpe.calibrate(c if c["used"] else None, proba[:, k]) for k, c in enumerate(calibrations)]
    )
    per_class = [_direct(q[:, k], y_pred == cls) for k, cls in enumerate(classes)]
    right = sum(q[y_pred == cls, k].sum() for k, cls in enumerate(classes))
    direct = {
        "accuracy": right / len(y_pred),
        **{
            f"{m}_macro": float(np.mean([c[m] for c in per_class]))
            for m in ("precision", "recall", "f1")
        },
        "roc_auc": float(np.mean([_direct_auc(q[:, k], proba[:, k]) for k in range(4)])),
    }
    for name, exact in direct.items():
        # The probabilities are on the grid: the histogram form is the row formula.
        assert estimates[name].value == pytest.approx(exact, abs=1e-9), name


# --- through the API: bands hold on calibrated data, and a concept shift leaves them ---------------


def _proba_columns(proba: np.ndarray, classes: list[str]) -> dict[str, np.ndarray]:
    return {f"proba_{cls}": proba[:, k] for k, cls in enumerate(classes)}


async def _windows(api: Api, base: str, start: datetime, hours: int) -> list[dict[str, Any]]:
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={
            "model": "m",
            "window": "hour",
            "from": start.isoformat(),
            "to": (start + timedelta(hours=hours)).isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    windows: list[dict[str, Any]] = r.json()["windows"]
    assert len(windows) == hours
    return windows


def _coverage(windows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[bool]]:
    inside: dict[str, list[bool]] = {}
    for w in windows:
        for name in names:
            estimate, realised = w["estimated"][name], w["metrics"][name]["value"]
            inside.setdefault(name, []).append(estimate["low"] <= realised <= estimate["high"])
    return inside


async def test_multiclass_estimates_hold_the_realised_values(patient: Api) -> None:
    api = patient
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(8)
    classes = ["a", "b", "c", "d"]
    names = np.array(classes, dtype=object)
    proba, labels = _multiclass_rows(rng, 10_000, 4)
    await post_table(
        api,
        base + "/performance-reference",
        pa.table(
            {
                "y_true": names[labels],
                "y_pred": names[proba.argmax(axis=1)],
                **_proba_columns(proba, classes),
            }
        ),
        model="m",
    )
    hours, per_hour, shifted = 24, 250, 2
    proba, labels = _multiclass_rows(rng, hours * per_hour, 4)
    hour = np.repeat(np.arange(hours), per_hour)
    # A concept shift: in the last hours the same inputs mean the next class.
    labels = np.where(hour >= hours - shifted, (labels + 1) % 4, labels)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    ids = [f"r{i}" for i in range(len(hour))]
    await post_table(
        api,
        base + "/predictions",
        pa.table(
            {
                "id": ids,
                "y_pred": names[proba.argmax(axis=1)],
                **_proba_columns(proba, classes),
                "time": pa.array(
                    [start + timedelta(hours=int(h)) for h in hour], pa.timestamp("ms", tz="UTC")
                ),
            }
        ),
        model="m",
    )
    before = await _windows(api, base, start, hours)
    # Estimated as soon as predictions are in, before any label.
    assert all(w["n_labelled"] == 0 and w["estimated"]["accuracy"]["value"] for w in before)
    # In parts: each part's hours take many score-histogram paths on the test database.
    for part in range(0, len(ids), 1500):
        labelled = pa.table(
            {"id": ids[part : part + 1500], "y_true": names[labels[part : part + 1500]]}
        )
        await post_table(api, base + "/ground-truth", labelled, model="m")
    windows = await _windows(api, base, start, hours)
    metrics = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
    assert set(windows[0]["estimated"]) == {*metrics, "calibrated"}
    assert windows[0]["estimated"]["calibrated"] is True
    inside = _coverage(windows, metrics)
    for name in metrics:
        assert sum(inside[name][:-shifted]) >= 0.9 * (hours - shifted), name
        assert inside[name][-shifted:] == [False] * shifted, name
