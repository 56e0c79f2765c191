"""Predictions tied to a drift run: ``DriftMonitor.predictions`` sends the monitor's run,
``Client.predictions(run=...)`` the one named; when the run's creation itself waits in the
spool, its predictions are replayed after it, with the id the server gave it.

Real backend, real tokens; ``Link`` (tests/client/test_spool.py) cuts the connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
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
    assert run.has_predictions is False
    alice.predictions(
        experiment.id, "named-run", ids[:20], y_pred[:20], times=times[:20], run=run.id
    )
    assert alice.get_drift(experiment.id, run.id).has_predictions is True
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


def test_predictions_of_a_run_deleted_before_replay_are_sent_without_it(
    make_client: Callable[..., Client],
    alice: Client,
    experiment: Experiment,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link()
    client = make_client("alice", transport=link)
    spool = Spool(tmp_path / "spool")
    ids, y_pred, _, times = _data(30, 6)
    with DriftMonitor(experiment.name, "gone-run", client=client, spool=spool) as monitor:
        assert monitor.drift is not None  # made live: the spooled batch names its id
        link.down = True
        monitor.predictions(ids, y_pred, times=times)
    alice.delete_drift(experiment.id, monitor.drift.id)

    link.down = False
    with caplog.at_level("WARNING", logger="drift_monitor"):
        result = spool.flush(client)
    # The server's 404 names the field ``run``: the batch goes again without it; the run's
    # end (a 404 about the run itself, on another route) is refused for good.
    assert (result.sent, result.dead) == (1, 1)
    assert "sent without their run" in caplog.text
    window = alice.performance(
        experiment.id, "gone-run", "day", DAY - timedelta(days=1), DAY + timedelta(days=1)
    )["windows"][0]
    assert window["n_predicted"] == 30
    assert alice.performance_runs(experiment.id, "gone-run")["runs"] == []


@dataclass
class Answers(Link):
    """``Link`` that answers the first predictions upload with a given 404 body instead of
    passing it to the server."""

    not_found: dict[str, Any] = field(default_factory=dict)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.not_found and request.url.path.endswith("/predictions"):
            body, self.not_found = self.not_found, {}
            self.sent.append((f"{request.method} {request.url.path}", None))
            return httpx2.Response(404, json=body, request=request)
        return super().handle_request(request)


@pytest.mark.parametrize(
    ("errors", "message", "fallback"),
    [
        # The field decides, whatever the message says.
        ([{"field": "run", "reason": "gone"}], "reworded: the run is gone", True),
        ([], "run: no drift run 'x' in this experiment", False),
        ([{"field": "model", "reason": "no such model"}], "run: misleading", False),
    ],
)
def test_the_spool_falls_back_on_the_404s_field_not_its_message(
    make_client: Callable[..., Client],
    alice: Client,
    experiment: Experiment,
    tmp_path: Path,
    errors: list[dict[str, str]],
    message: str,
    fallback: bool,
) -> None:
    link = Answers()
    client = make_client("alice", transport=link)
    spool = Spool(tmp_path / "spool")
    ids, y_pred, _, times = _data(12, 7)
    model = f"field-{fallback}-{len(errors)}"
    with DriftMonitor(experiment.name, model, client=client, spool=spool) as monitor:
        link.down = True
        monitor.predictions(ids, y_pred, times=times)
        link.down = False
        link.sent.clear()
        # The monitor's end replays the spool first: the batch meets this 404.
        link.not_found = {"code": "not_found", "status": 404, "message": message, "errors": errors}
    uploads = [call for call, _ in link.sent if call.endswith("/predictions")]
    dead = [entry.kind for entry in spool.entries() if entry.state == "dead"]
    if fallback:  # sent again without the run
        assert (len(uploads), dead) == (2, [])
        window = alice.performance(
            experiment.id, model, "day", DAY - timedelta(days=1), DAY + timedelta(days=1)
        )["windows"][0]
        assert window["n_predicted"] == 12
    else:  # refused for good, and not sent again: the model has no predictions
        assert (len(uploads), dead) == (1, ["predictions"])
        with pytest.raises(NotFoundError):
            alice.performance(experiment.id, model)


def test_api_errors_expose_their_fields(alice: Client, experiment: Experiment) -> None:
    with pytest.raises(NotFoundError) as missing:
        alice.predictions(experiment.id, "fields", ["x"], [1], run="no-such-run")
    assert missing.value.fields == ("run",)
    assert [e.field for e in missing.value.errors] == ["run"]
    with pytest.raises(NotFoundError) as unknown:
        alice.performance_runs(experiment.id, "never-predicted")
    assert unknown.value.fields == ("model",)
    with pytest.raises(NotFoundError) as experiment_missing:
        alice.performance_runs("no-such-experiment", "m")
    assert experiment_missing.value.fields == ()
