"""``DriftMonitor`` end to end: runs are checked on the server through ``Client``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pytest
from drift_monitor import Client, DriftMonitor, Experiment, ExperimentNotFound, TransportError

from tests.client.conftest import FlakyTransport, unique
from tests.support.jwt_issuer import JWTIssuer


class DetectorCrashed(Exception):
    pass


def test_completed_run_records_concept_and_data(alice: Client, experiment: Experiment) -> None:
    with DriftMonitor(experiment.name, "model-1", ["nightly", "v2"], client=alice) as monitor:
        assert monitor.drift is not None
        running = alice.get_drift(experiment.id, monitor.drift.id)
        assert running.job_status == "Running"
        monitor.concept(True, {"p_value": 0.01, "method": "ks"})
        monitor.data(False, {"psi": 0.05})
        monitor.heartbeat()
    assert monitor.drift is not None
    drift = alice.get_drift(experiment.id, monitor.drift.id)
    assert drift.job_status == "Completed"
    assert drift.finished_at is not None
    assert drift.model == "model-1"
    assert drift.tags == ["nightly", "v2"]
    assert drift.concept_drift is not None
    assert drift.concept_drift.drift is True
    assert drift.concept_drift.parameters == {"p_value": 0.01, "method": "ks"}
    assert drift.data_drift is not None
    assert drift.data_drift.parameters == {"psi": 0.05}
    assert drift.drift_detected is True, "the server ORs in the detectors' results"
    assert drift.error is None


def test_call_sets_overall_result_with_numpy_values(alice: Client, experiment: Experiment) -> None:
    parameters = {
        "p_values": np.array([0.1, np.nan, 0.003]),
        "statistic": np.float32(1.5),
        "n": np.int64(1000),
        "per_feature": {"age": [np.float64(np.inf), np.bool_(False)]},
    }
    with DriftMonitor(experiment.name, "model-np", client=alice) as monitor:
        monitor(np.bool_(True), parameters)
    assert monitor.drift is not None
    drift = alice.get_drift(experiment.id, monitor.drift.id)
    assert drift.drift_detected is True
    assert drift.parameters == {
        "p_values": [0.1, None, 0.003],
        "statistic": 1.5,
        "n": 1000,
        "per_feature": {"age": [None, False]},
    }
    assert drift.concept_drift is None
    assert drift.data_drift is None


def crashing_job(
    monitor: DriftMonitor, message: str, during: Callable[[], object] = lambda: None
) -> None:
    with monitor:
        monitor.data(True, {"psi": 0.4})
        during()
        raise DetectorCrashed(message)


def test_failed_run_records_error_and_reraises(alice: Client, experiment: Experiment) -> None:
    monitor = DriftMonitor(experiment.name, "model-1", client=alice)
    with pytest.raises(DetectorCrashed, match="out of memory"):
        crashing_job(monitor, "out of memory")
    assert monitor.drift is not None
    drift = alice.get_drift(experiment.id, monitor.drift.id)
    assert drift.job_status == "Failed"
    assert drift.error is not None
    assert (drift.error.type, drift.error.message) == ("DetectorCrashed", "out of memory")
    assert drift.data_drift is not None
    assert drift.data_drift.drift is True


def test_exception_propagates_when_server_unreachable_on_exit(
    make_client: Callable[..., Client],
    experiment: Experiment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without the spool (with it, see test_spool) the lost report is only logged."""
    transport = FlakyTransport()
    client = make_client("alice", transport=transport, retries=2)
    monitor = DriftMonitor(experiment.name, "model-1", client=client, spool=False)

    def server_goes_away() -> None:
        transport.down = True

    with caplog.at_level(logging.WARNING, logger="drift_monitor"), pytest.raises(DetectorCrashed):
        crashing_job(monitor, "boom", during=server_goes_away)
    assert "could not mark drift run" in caplog.text
    assert monitor.drift is not None
    put = f"PUT /api/v1/experiment/{experiment.id}/drift/{monitor.drift.id}"
    assert transport.calls[-3:] == [put] * 3, "one try plus two retries"


def test_success_but_unreachable_on_exit_raises(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    transport = FlakyTransport()
    client = make_client("alice", transport=transport, retries=0)
    with (
        pytest.raises(TransportError),
        DriftMonitor(experiment.name, "m", client=client, spool=False),
    ):
        transport.down = True


def test_unknown_experiment_fails_on_enter(alice: Client) -> None:
    with pytest.raises(ExperimentNotFound), DriftMonitor(unique("nope"), "m", client=alice):
        pytest.fail("body must not run")


def test_recording_outside_the_block_is_an_error() -> None:
    monitor = DriftMonitor("x", "m")
    with pytest.raises(RuntimeError, match="outside"):
        monitor.concept(True, {})


def test_monitor_builds_its_client_from_env(
    backend_env: str,
    issuer: JWTIssuer,
    monkeypatch: pytest.MonkeyPatch,
    alice: Client,
    experiment: Experiment,
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("alice"))
    with DriftMonitor(experiment.name, "env-model") as monitor:
        monitor(False, {})
    runs = alice.search_drifts(experiment.id, {"model": "env-model"})
    assert [d.job_status for d in runs] == ["Completed"]
