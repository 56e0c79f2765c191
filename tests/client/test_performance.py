"""The SDK's performance calls end to end against the live backend: predictions from a
monitor, labels later from another client (in batches, some unknown), the reference, and
the metrics per window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from drift_monitor import (
    Client,
    DataError,
    DriftMonitor,
    Experiment,
    LabelsRecorded,
    NotFoundError,
    PredictionsRecorded,
    ValidationError,
)
from sklearn import metrics as skm

from tests.client.conftest import FlakyTransport


def test_predictions_then_late_labels(
    alice: Client, make_client: Callable[..., Client], experiment: Experiment
) -> None:
    rng = np.random.default_rng(3)
    n = 250
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 3)
    pred = (score > 0.5).astype(int)
    ids = [f"row-{i}" for i in range(n)]
    day = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with DriftMonitor(experiment.name, "clf", client=alice) as monitor:
        reference = monitor.performance_reference(y, pred, np.column_stack([1 - score, score]))
        assert reference["metrics"]["accuracy"]["value"] == pytest.approx(
            skm.accuracy_score(y, pred)
        )
        recorded = monitor.predictions(
            ids,
            pred,
            proba=pd.DataFrame({"0": 1 - score, "1": score}),
            times=[day + timedelta(minutes=i) for i in range(n)],
        )
    assert recorded == PredictionsRecorded(n, n, 0, "classification", ["0", "1"])

    # Labels from another process, in batches of 100, with one id never predicted.
    transport = FlakyTransport()
    labeller = make_client(transport=transport)
    answer = labeller.ground_truth(
        experiment.id, "clf", [*ids[::-1], "ghost"], [*y[::-1].tolist(), 1], batch_size=100
    )
    assert answer == LabelsRecorded(n + 1, n, 0, 0, 1, ["ghost"])
    posts = [c for c in transport.calls if c.endswith("/ground-truth")]
    assert len(posts) == 3  # 251 rows in batches of 100

    report = alice.performance(
        experiment.id, "clf", "day", day - timedelta(days=1), day + timedelta(days=1)
    )
    (window,) = report["windows"]
    assert window["n_predicted"] == n
    assert window["coverage"] == 1.0
    assert window["complete"] is True
    metrics = window["metrics"]
    assert metrics["f1"]["value"] == pytest.approx(skm.f1_score(y, pred))
    assert metrics["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, score))
    assert report["reference"]["metrics"] == reference["metrics"]


def test_retried_prediction_batch_is_harmless(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    """A 503 after the server may have stored the batch: the retry counts duplicates."""
    transport = FlakyTransport([503])
    client = make_client(transport=transport)
    answer = client.predictions(experiment.id, "r", ["a", "b"], [1.5, 2.5])
    assert answer.recorded == 2
    assert answer.task == "regression"
    again = client.predictions(experiment.id, "r", ["a", "b"], [9.0, 9.0])
    assert (again.recorded, again.duplicates) == (0, 2)


def test_sdk_errors(alice: Client, experiment: Experiment) -> None:
    with pytest.raises(DataError, match="different lengths"):
        alice.predictions(experiment.id, "m", ["a", "b"], [1])
    with pytest.raises(DataError, match="2 columns but 3 classes"):
        alice.predictions(experiment.id, "m", ["a"], [1], [[0.5, 0.5]], classes=["x", "y", "z"])
    with pytest.raises(NotFoundError, match="model"):
        alice.ground_truth(experiment.id, "never-predicted", ["a"], [1])


def test_a_baseline_upload_is_also_the_performance_reference(
    alice: Client, experiment: Experiment
) -> None:
    rng = np.random.default_rng(9)
    n = 300
    score = np.round(rng.random(n), 3)
    label = (rng.random(n) < score).astype(int)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "label": label,
            "pred": (score > 0.5).astype(int),
            "p_0": 1 - score,
            "p_1": score,
        }
    )
    with DriftMonitor(experiment.name, "ref", client=alice) as monitor:
        baseline = monitor.baseline(frame, target="label", prediction="pred", proba_prefix="p_")
    assert [f.name for f in baseline.features] == ["age"]
    assert baseline.performance_reference is not None
    assert baseline.performance_reference["n"] == n
    assert baseline.performance_reference["metrics"]["accuracy"]["value"] == pytest.approx(
        skm.accuracy_score(label, frame["pred"])
    )
    assert alice.performance(experiment.id, "ref")["reference"]["n"] == n
    # A model is required: the client's call without one is refused, naming it.
    with pytest.raises(ValidationError) as refused:
        alice.upload_baseline(experiment.id, frame, target="label", prediction="pred")
    assert refused.value.errors[0].field == "model"
    plain = alice.upload_baseline(experiment.id, frame.drop(columns=["label"]), model="ref")
    assert plain.performance_reference is None
