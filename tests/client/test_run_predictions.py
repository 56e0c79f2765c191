"""Predictions tied to a drift run: ``DriftMonitor.predictions`` sends the monitor's run,
``Client.predictions(run=...)`` the one named; when the run's creation itself waits in the
spool, its predictions are replayed after it, with the id the server gave it.

Real backend, real tokens; ``Link`` (tests/client/test_spool.py) cuts the connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from drift_monitor import (
    Client,
    DriftMonitor,
    Experiment,
    NotFoundError,
    PredictionsRecorded,
    Spool,
    ValidationError,
)

from tests.client.test_spool import Link

DAY = datetime(2026, 4, 6, 9, tzinfo=UTC)


def _data(n: int, seed: int) -> tuple[list[str], list[int], list[int], list[datetime]]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.75, y_true, 1 - y_true)
    times = [DAY + timedelta(minutes=i) for i in range(n)]
    return [f"id-{i}" for i in range(n)], y_pred.tolist(), y_true.tolist(), times


def test_a_monitor_sends_its_run_with_its_predictions(
    alice: Client, experiment: Experiment
) -> None:
    ids, y_pred, y_true, times = _data(120, 1)
    with DriftMonitor(experiment.name, "run-clf", client=alice, spool=False) as monitor:
        recorded = monitor.predictions(ids, y_pred, times=times, batch_size=50)
        assert monitor.drift is not None
        run_id = monitor.drift.id
    assert recorded.recorded == 120
    # Labels come later, from any process, without a run: they find it by id.
    alice.ground_truth(experiment.id, "run-clf", ids, y_true)
    answer = alice.run_performance(experiment.id, run_id)
    run = answer["run"]
    assert (run["run_id"], run["n_predicted"], run["n_labelled"]) == (run_id, 120, 120)
    accuracy = float(np.mean(np.array(y_pred) == np.array(y_true)))
    assert run["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)
    listed = alice.performance_runs(experiment.id, "run-clf")
    assert [r["run_id"] for r in listed["runs"]] == [run_id]


def test_client_predictions_take_a_run(alice: Client, experiment: Experiment) -> None:
    ids, y_pred, _, times = _data(30, 2)
    run = alice.create_drift(experiment.id, "named-run")
    alice.predictions(
        experiment.id, "named-run", ids[:20], y_pred[:20], times=times[:20], run=run.id
    )
    alice.predictions(experiment.id, "named-run", ids[20:], y_pred[20:], times=times[20:])
    assert alice.run_performance(experiment.id, run.id)["run"]["n_predicted"] == 20
    with pytest.raises(NotFoundError, match="run"):
        alice.predictions(experiment.id, "named-run", ["x"], [1], run="no-such-run")
    other = alice.create_drift(experiment.id, "another-model")
    with pytest.raises(ValidationError) as refused:
        alice.predictions(experiment.id, "named-run", ["x"], [1], run=other.id)
    assert [e.field for e in refused.value.errors] == ["run"]


def test_predictions_of_a_spooled_run_replay_with_its_new_id(
    make_client: Callable[..., Client], alice: Client, experiment: Experiment, tmp_path: Path
) -> None:
    link = Link()
    client = make_client("alice", transport=link)
    spool = Spool(tmp_path / "spool")
    ids, y_pred, y_true, times = _data(80, 3)
    link.down = True
    with DriftMonitor(experiment.name, "offline-run", client=client, spool=spool) as monitor:
        assert monitor.drift is None  # its creation waits in the spool
        predicted = monitor.predictions(ids, y_pred, times=times, batch_size=50)
    assert predicted == PredictionsRecorded(spooled=80)
    uploads = [e for e in spool.entries() if e.kind == "predictions"]
    assert [e.after for e in uploads] == [monitor._run_key] * 2

    link.down = False
    result = spool.flush(client)
    assert (result.sent, result.dead, result.waiting) == (4, 0, 0)
    (made,) = alice.search_drifts(experiment.id, {"model": "offline-run"})
    assert made.job_status == "Completed"
    run = alice.run_performance(experiment.id, made.id)["run"]
    assert (run["run_id"], run["n_predicted"]) == (made.id, 80)
    alice.ground_truth(experiment.id, "offline-run", ids, y_true)
    run = alice.run_performance(experiment.id, made.id)["run"]
    assert run["n_labelled"] == 80
    assert run["complete"] is True


def test_predictions_of_a_run_refused_on_replay_are_sent_without_it(
    make_client: Callable[..., Client],
    alice: Client,
    experiment: Experiment,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link()
    client = make_client("alice", transport=link)
    spool = Spool(tmp_path / "spool")
    ids, y_pred, _, times = _data(30, 4)
    link.down = True
    with DriftMonitor(experiment.name, "refused-run", client=client, spool=spool) as monitor:
        monitor.predictions(ids, y_pred, times=times)
    # The run's creation is refused for good on replay: backdated past the server's limit.
    (create,) = [e for e in spool.entries() if e.kind == "create"]
    record = json.loads(create.path.read_text())
    record["at"] = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="milliseconds")
    create.path.write_text(json.dumps(record))

    link.down = False
    with caplog.at_level("WARNING", logger="drift_monitor"):
        result = spool.flush(client)
    assert (result.sent, result.dead) == (1, 2)  # the predictions; the creation and the end
    assert "sent without their run" in caplog.text
    window = alice.performance(
        experiment.id, "refused-run", "day", DAY - timedelta(days=1), DAY + timedelta(days=1)
    )["windows"][0]
    assert window["n_predicted"] == 30
    assert alice.performance_runs(experiment.id, "refused-run")["runs"] == []
