"""Predictions and labels the server cannot take now wait in the spool and are replayed in
order: labels never overtake the predictions they label, and the counts come out right.

Real backend, real tokens, real files. The fake is ``Link`` (tests/client/test_spool.py), a
transport in front of the real one that the test can cut; the last test stops a real
backend instead and starts another on the same port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from drift_backend.devstack.services import ManagedProcess, free_port
from drift_backend.main import create_app
from drift_monitor import (
    Client,
    DriftMonitor,
    Experiment,
    FlushResult,
    LabelsRecorded,
    PredictionsRecorded,
    Spool,
    TransportError,
    register,
)

from tests.client.test_spool import Link
from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

DAY = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def linked(make_client: Callable[..., Client]) -> Callable[[], tuple[Client, Link]]:
    def build() -> tuple[Client, Link]:
        link = Link()
        return make_client("alice", transport=link), link

    return build


def data(n: int, seed: int = 5) -> tuple[list[str], list[int], list[int], list[datetime]]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    times = [DAY + timedelta(minutes=i) for i in range(n)]
    return [f"id-{i}" for i in range(n)], y_pred.tolist(), y_true.tolist(), times


def day_window(client: Client, experiment_id: str, model: str) -> dict[str, Any]:
    report = client.performance(
        experiment_id, model, "day", DAY - timedelta(days=1), DAY + timedelta(days=1)
    )
    (window,) = report["windows"]
    return dict(window)


def kinds(spool: Spool) -> list[tuple[str, str]]:
    return [(e.kind, e.state) for e in spool.entries()]


def test_a_monitor_without_the_server_spools_predictions_and_labels_in_order(
    linked: Callable[[], tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
) -> None:
    ids, y_pred, y_true, times = data(250)
    client, link = linked()
    link.down = True
    with DriftMonitor(experiment.name, "offline-clf", client=client, spool=spool) as monitor:
        predicted = monitor.predictions(ids, y_pred, times=times, batch_size=100)
        labelled = monitor.ground_truth(ids[::-1], y_true[::-1], batch_size=100)
    assert predicted == PredictionsRecorded(spooled=250)
    assert labelled == LabelsRecorded(spooled=250)
    assert kinds(spool) == [
        ("create", "pending"),
        *[("predictions", "pending")] * 3,
        *[("labels", "pending")] * 3,
        ("finish", "pending"),
    ]
    assert all(e.size > 0 for e in spool.entries() if e.kind in ("predictions", "labels"))

    link.down = False
    link.sent.clear()
    assert spool.flush(client) == FlushResult(sent=8, dead=0, waiting=0, stopped=None)
    posts = [call.rsplit("/", 1)[1] for call, _ in link.sent if call.startswith("POST")]
    uploads = [p for p in posts if p in ("predictions", "ground-truth")]
    assert uploads == ["predictions"] * 3 + ["ground-truth"] * 3, "in the order spooled"
    window = day_window(alice, experiment.id, "offline-clf")
    assert (window["n_predicted"], window["n_labelled"]) == (250, 250)
    accuracy = float(np.mean(np.array(y_pred) == np.array(y_true)))
    assert window["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)


def test_the_server_going_away_mid_call_spools_the_rest_and_later_calls_wait_behind_it(
    linked: Callable[[], tuple[Client, Link]],
    alice: Client,
    experiment: Experiment,
    spool: Spool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, y_pred, y_true, times = data(300, seed=8)
    client, link = linked()

    def cut() -> None:
        link.down = True

    link.before["/predictions"] = cut  # the first batch goes through, then the link is cut
    with caplog.at_level(logging.WARNING, logger="drift_monitor"):
        predicted = client.predictions(
            experiment.id, "flaky", ids, y_pred, times=times, batch_size=100, spool=spool
        )
    assert (predicted.received, predicted.spooled) == (100, 200)
    assert "this batch and the rest go to the spool" in caplog.text

    # Labels while their predictions still wait: spooled behind them, never sent first.
    labelled = client.ground_truth(experiment.id, "flaky", ids[:150], y_true[:150], spool=spool)
    assert labelled == LabelsRecorded(spooled=150)

    # The server is back: the next call replays what waits, then sends its own batch.
    link.down = False
    rest = client.ground_truth(experiment.id, "flaky", ids[150:], y_true[150:], spool=spool)
    assert rest == LabelsRecorded(received=150, labelled=150)
    assert spool.entries() == []
    window = day_window(alice, experiment.id, "flaky")
    assert (window["n_predicted"], window["n_labelled"]) == (300, 300), "no label was unknown"


def test_spool_off_raises_and_a_batch_over_the_cap_is_dropped(
    linked: Callable[[], tuple[Client, Link]],
    experiment: Experiment,
    tmp_path: Path,
) -> None:
    ids, y_pred, _, _ = data(50)
    client, link = linked()
    link.down = True
    with pytest.raises(TransportError):
        client.predictions(experiment.id, "capped", ids, y_pred)
    tiny = Spool(tmp_path / "tiny", max_bytes=10)
    answer = client.predictions(experiment.id, "capped", ids, y_pred, spool=tiny)
    assert answer == PredictionsRecorded(dropped=50)
    assert tiny.entries() == []


def test_real_server_down_then_up_replays_the_spooled_batches(
    mongodb: ManagedProcess, issuer: JWTIssuer, tmp_path: Path
) -> None:
    settings = make_settings(mongodb, [issuer.url])
    port = free_port()
    spool = Spool(tmp_path / "spool")
    ids, y_pred, y_true, times = data(240, seed=11)
    with ThreadedServer(create_app(settings), port=port) as server:
        client = Client(server.url, token=lambda: issuer.token("alice"), sleep=lambda _: None)
        register(accept_terms=True, client=client)
        experiment = client.create_experiment(f"spooled-{port}")
        first = client.predictions(experiment.id, "m", ids[:40], y_pred[:40], times=times[:40])
        assert first.recorded == 40
    # The server is stopped: nothing listens on the port.
    predicted = client.predictions(
        experiment.id, "m", ids, y_pred, times=times, batch_size=100, spool=spool
    )
    labelled = client.ground_truth(experiment.id, "m", ids, y_true, batch_size=100, spool=spool)
    assert (predicted.spooled, labelled.spooled) == (240, 240)
    assert [e.kind for e in spool.entries()] == ["predictions"] * 3 + ["labels"] * 3

    with ThreadedServer(create_app(settings), port=port):
        assert spool.flush(client) == FlushResult(sent=6, dead=0, waiting=0, stopped=None)
        window = day_window(client, experiment.id, "m")
    client.close()
    # The first 40 were recorded before: the replay counted them as duplicates, not twice.
    assert (window["n_predicted"], window["n_labelled"]) == (240, 240)
    accuracy = float(np.mean(np.array(y_pred) == np.array(y_true)))
    assert window["metrics"]["accuracy"]["value"] == pytest.approx(accuracy)
