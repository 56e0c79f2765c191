"""The "degraded" decision: a one-sided two-proportion test against the reference, with a
tolerance; on a concept shift the realised accuracy departs and the answer says so."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.performance.decisions import (
    Moments,
    Tolerances,
    below_reference,
    mean_above_reference,
    window_decisions,
)
from drift_backend.performance.windows import classification_stats, regression_stats
from scipy.stats import bootstrap, norm

from tests.conftest import Api
from tests.support.uploads import post_table

PREFIX = "/api/v1"


def test_the_test_statistic() -> None:
    decision = below_reference(80, 100, 900, 1000, tolerance=0.02, alpha=0.05)
    se = math.sqrt(0.8 * 0.2 / 100 + 0.9 * 0.1 / 1000)
    assert decision.p_value == pytest.approx(norm.sf((0.9 - 0.02 - 0.8) / se))
    assert decision.degraded is True


def test_a_small_or_tolerated_gap_is_not_degraded() -> None:
    assert below_reference(8, 10, 900, 1000, 0.02, 0.05).degraded is False  # too few rows
    assert below_reference(890, 1000, 900, 1000, 0.02, 0.05).degraded is False  # within
    assert below_reference(895, 1000, 900, 1000, 0.0, 0.05).degraded is False
    assert below_reference(0, 0, 900, 1000, 0.02, 0.05).degraded is None
    certain = below_reference(0, 50, 100, 100, 0.02, 0.05)
    assert certain.degraded is True
    assert certain.p_value == 0.0


async def test_a_concept_shift_is_reported_as_degraded(api: Api) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(21)

    def rows(n: int, accuracy: float) -> tuple[list[int], list[int]]:
        y = rng.integers(0, 2, n)
        wrong = rng.random(n) > accuracy
        return y.tolist(), np.where(wrong, 1 - y, y).tolist()

    async def post(route: str, table: pa.Table) -> None:
        await post_table(api, base + route, table, "m")

    y, pred = rows(1000, 0.9)
    await post("/performance-reference", pa.table({"y_true": y, "y_pred": pred}))
    day = datetime(2026, 5, 4, tzinfo=UTC)
    truth: dict[str, int] = {}
    # Day 0 as the reference; days 1 and 2 after a concept shift, day 2 half labelled.
    for d, (accuracy, labelled) in enumerate([(0.9, 1.0), (0.6, 1.0), (0.6, 0.5)]):
        y, pred = rows(400, accuracy)
        ids = [f"{d}-{i}" for i in range(400)]
        when = pa.array([day + timedelta(days=d, hours=1)] * 400, pa.timestamp("ms", tz="UTC"))
        await post("/predictions", pa.table({"id": ids, "y_pred": pred, "time": when}))
        truth.update(dict(list(zip(ids, y, strict=True))[: int(400 * labelled)]))
    await post("/ground-truth", pa.table({"id": list(truth), "y_true": list(truth.values())}))
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={"model": "m", "from": day.isoformat(), "to": (day + timedelta(days=3)).isoformat()},
    )
    assert r.status_code == 200, r.text
    decisions = [w["decision"] for w in r.json()["windows"]]
    assert [d["degraded"] for d in decisions] == [False, True, None]
    assert decisions[1]["p_value"] < 0.001
    assert decisions[2]["reason"] == "incomplete window: coverage too low"


# --- regression: the bootstrap interval from the windows' sums --------------------


def _moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values**2).sum()))


def _errors(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    # Skewed, heavy-ish tailed errors (a Student t with 5 degrees of freedom): the honest case.
    return scale * rng.standard_t(5, n)


def test_the_closed_form_equals_a_resampling_bootstrap() -> None:
    """The standard error and p-value from the sums equal a numpy bootstrap that resamples
    the rows, and the interval scipy's bootstrap gives for the mean absolute error."""
    rng = np.random.default_rng(5)
    window, reference = np.abs(_errors(rng, 400, 1.15)), np.abs(_errors(rng, 2000))
    mine, ref = _moments(window), _moments(reference)
    draws = 4000
    means_w = rng.choice(window, (draws, len(window))).mean(axis=1)
    means_r = rng.choice(reference, (draws, len(reference))).mean(axis=1)
    assert mine.bootstrap_se == pytest.approx(means_w.std(), rel=0.05)
    assert ref.bootstrap_se == pytest.approx(means_r.std(), rel=0.05)
    decision = mean_above_reference(mine, ref, 0.05, 0.05, "mae")
    # The share of resampled worlds in which the window is no worse than tolerated.
    resampled = float(np.mean(means_w - 1.05 * means_r <= 0))
    assert decision.p_value == pytest.approx(resampled, abs=0.02)
    interval = bootstrap((window,), np.mean, n_resamples=4000, method="percentile", random_state=1)
    se = mine.bootstrap_se
    low, high = mine.mean - 1.96 * se, mine.mean + 1.96 * se
    assert low == pytest.approx(interval.confidence_interval.low, rel=0.01)
    assert high == pytest.approx(interval.confidence_interval.high, rel=0.01)
    assert decision.value == pytest.approx(float(np.mean(window)))
    assert decision.threshold == pytest.approx(1.05 * float(np.mean(reference)))


@pytest.mark.parametrize("metric", ["mae", "rmse"])
def test_regression_decisions_are_calibrated(metric: str) -> None:
    """No degradation: degraded in at most about alpha of many windows (tolerance 0, the
    hardest case: the null's boundary). A 30 % larger error: found in nearly every one."""
    rng = np.random.default_rng(11)
    reference = _errors(rng, 5000)
    tolerances = Tolerances(tolerance=0.02, regression_tolerance=0.0, alpha=0.05)

    def stats(e: np.ndarray) -> dict[str, float]:
        return regression_stats(np.zeros(len(e)), e, 0.0)

    def degraded(scale: float) -> float:
        found = []
        for _ in range(400):
            window = stats(_errors(rng, 300, scale))
            d = window_decisions(True, [], window, stats(reference), True, tolerances)[metric]
            found.append(bool(d.degraded))
        return float(np.mean(found))

    # The reference itself is a sample: windows drawn from the same law see its error.
    assert degraded(1.0) <= 0.08
    assert degraded(1.3) >= 0.95


def test_no_regression_decision_without_rows_or_fourth_powers() -> None:
    few = regression_stats(np.zeros(5), np.ones(5), 0.0)
    many = regression_stats(np.zeros(50), np.ones(50), 0.0)
    tolerances = Tolerances(0.02, 0.1, 0.05)
    assert window_decisions(True, [], few, many, True, tolerances)["mae"].degraded is None
    old = {k: v for k, v in many.items() if k != "q"}
    found = window_decisions(True, [], many, old, True, tolerances)
    assert found["mae"].degraded is False  # equal errors
    assert found["rmse"].degraded is None
    assert "e⁴" in str(found["rmse"].reason)


def test_precision_and_recall_decisions_of_a_binary_model() -> None:
    y = np.array(["0", "1"] * 500, dtype=object)
    reference = classification_stats(y, y.copy(), None, [])
    # The window predicts 0 for half of the positives: recall falls, precision does not.
    pred = y.copy()
    pred[1::4] = "0"
    window = classification_stats(y, pred, None, [])
    found = window_decisions(False, [], window, reference, True, Tolerances(0.02, 0.1, 0.05))
    assert list(found) == ["accuracy", "precision", "recall"]
    assert found["recall"].degraded is True
    assert found["recall"].value == pytest.approx(0.5)
    assert found["precision"].degraded is False


async def test_a_regression_window_with_larger_errors_is_degraded(api: Api) -> None:
    await api.register("alice")
    exp = (await api.experiment("alice"))["id"]
    base = f"{PREFIX}/experiment/{exp}"
    rng = np.random.default_rng(3)

    async def post(route: str, table: pa.Table) -> None:
        await post_table(api, base + route, table, "r")

    y = rng.normal(10, 2, 2000)
    await post(
        "/performance-reference", pa.table({"y_true": y, "y_pred": y + rng.normal(0, 1, 2000)})
    )
    day = datetime(2026, 5, 4, tzinfo=UTC)
    ids, truth, preds, times = [], [], [], []
    for d, noise in enumerate([1.0, 2.0]):
        y = rng.normal(10, 2, 300)
        ids += [f"{d}-{i}" for i in range(300)]
        truth += y.tolist()
        preds += (y + rng.normal(0, noise, 300)).tolist()
        times += [day + timedelta(days=d, hours=2)] * 300
    when = pa.array(times, pa.timestamp("ms", tz="UTC"))
    await post("/predictions", pa.table({"id": ids, "y_pred": preds, "time": when}))
    await post("/ground-truth", pa.table({"id": ids, "y_true": truth}))
    r = await api.request(
        "GET",
        base + "/performance",
        "alice",
        params={"model": "r", "from": day.isoformat(), "to": (day + timedelta(days=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    windows = r.json()["windows"]
    assert [w["decision"]["metric"] for w in windows] == ["mae", "mae"]
    assert [w["decision"]["degraded"] for w in windows] == [False, True]
    assert [w["decisions"]["rmse"]["degraded"] for w in windows] == [False, True]
    assert windows[1]["decision"]["value"] == pytest.approx(windows[1]["metrics"]["mae"]["value"])
