"""Retries with backoff, using a transport that injects failures before the real one."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest
from drift_monitor import Client, Experiment, ServerError, TransportError

from tests.client.conftest import FlakyTransport


def flaky_client(
    make_client: Callable[..., Client],
    failures: list[int | type[httpx2.TransportError]],
    **kw: object,
) -> tuple[Client, FlakyTransport, list[float]]:
    transport = FlakyTransport()
    sleeps: list[float] = []
    client = make_client("alice", transport=transport, sleep=sleeps.append, **kw)
    transport.failures = list(failures)  # after registration, which went through cleanly
    transport.calls.clear()
    return client, transport, sleeps


def test_connect_errors_then_success(make_client: Callable[..., Client]) -> None:
    client, transport, sleeps = flaky_client(
        make_client, [httpx2.ConnectError, httpx2.ConnectTimeout]
    )
    assert client.get_user().subject == "alice"
    assert len(transport.calls) == 3
    assert len(sleeps) == 2
    # Exponential from 0.2 s, with jitter scaling each delay by 0.5 to 1.
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.4


def test_503_then_success_for_search(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    client, transport, sleeps = flaky_client(make_client, [503, 502])
    assert client.find_experiment(experiment.name).id == experiment.id
    assert len(transport.calls) == 3
    assert len(sleeps) == 2


def test_gives_up_after_retries(make_client: Callable[..., Client]) -> None:
    client, transport, sleeps = flaky_client(make_client, [httpx2.ConnectError] * 5, retries=2)
    with pytest.raises(TransportError, match="failed"):
        client.get_user()
    assert len(transport.calls) == 3
    assert len(sleeps) == 2

    transport.failures = [503] * 5
    with pytest.raises(ServerError) as error:
        client.get_user()
    assert error.value.status == 503


def test_retries_from_env(
    make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_RETRIES", "0")
    client, transport, _ = flaky_client(make_client, [504])
    with pytest.raises(ServerError):
        client.get_user()
    assert len(transport.calls) == 1


def test_post_drift_retried_only_before_sending(
    make_client: Callable[..., Client], alice: Client, experiment: Experiment
) -> None:
    client, transport, _ = flaky_client(make_client, [httpx2.ConnectError])
    drift = client.create_drift(experiment.id, "retry-model")
    assert len(transport.calls) == 2

    # A 503 or a read timeout may come after the server created the run: no retry.
    transport.failures = [503]
    with pytest.raises(ServerError):
        client.create_drift(experiment.id, "retry-model")
    transport.failures = [httpx2.ReadTimeout]
    with pytest.raises(TransportError):
        client.create_drift(experiment.id, "retry-model")
    runs = alice.search_drifts(experiment.id, {"model": "retry-model"})
    assert [d.id for d in runs] == [drift.id], "no duplicate runs"


def test_put_drift_retried_on_503_and_read_errors(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    client, transport, _ = flaky_client(make_client, [])
    drift = client.create_drift(experiment.id, "m")
    transport.failures = [503, httpx2.ReadError]
    done = client.replace_drift(experiment.id, drift.id, "m", job_status="Completed")
    assert done.job_status == "Completed"
    assert len(transport.calls) == 4
