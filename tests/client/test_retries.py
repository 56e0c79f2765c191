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
    transport.keys.clear()
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
    with pytest.raises(TransportError, match="failed") as unreachable:
        client.get_user()
    assert len(transport.calls) == 3
    assert len(sleeps) == 2
    assert unreachable.value.maybe_processed is False, "no attempt got through"

    transport.failures = [503] * 5
    with pytest.raises(ServerError) as error:
        client.get_user()
    assert error.value.status == 503
    assert error.value.maybe_processed is False, "our 503s come before the work"

    transport.failures = [httpx2.ReadTimeout, httpx2.ConnectError, 503]
    with pytest.raises(ServerError) as error:
        client.get_user()
    assert error.value.maybe_processed is True, "the first attempt may have been carried out"


def test_retries_from_env(
    make_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_RETRIES", "0")
    client, transport, _ = flaky_client(make_client, [504])
    with pytest.raises(ServerError):
        client.get_user()
    assert len(transport.calls) == 1


def test_post_drift_retried_with_one_idempotency_key(
    make_client: Callable[..., Client], alice: Client, experiment: Experiment
) -> None:
    """Every attempt of one creation carries the same key; another creation, a new one.
    (These faults come before the server: see test_retries_and_failures for lost answers.)"""
    client, transport, sleeps = flaky_client(make_client, [httpx2.ConnectError])
    first = client.create_drift(experiment.id, "retry-model")
    assert len(transport.calls) == 2

    # With a key, a 503 or a read timeout is retried too: the server would answer a repeat
    # of a request it did handle with the stored first answer.
    transport.failures = [503, httpx2.ReadTimeout]
    second = client.create_drift(experiment.id, "retry-model")
    post = f"POST /api/v1/experiment/{experiment.id}/drift"
    assert transport.calls == [post] * 5
    assert len(sleeps) == 3
    keys = transport.keys
    assert all(keys), "every creating POST carries an Idempotency-Key"
    assert keys[0] == keys[1], "the retry of the first creation reuses its key"
    assert keys[2] == keys[3] == keys[4], "so do the retries of the second"
    assert keys[0] != keys[2], "each creation has its own key"
    runs = alice.search_drifts(experiment.id, {"model": "retry-model"})
    assert sorted(d.id for d in runs) == sorted([first.id, second.id])


def test_creating_posts_send_a_key_and_reads_do_not(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    client, transport, _ = flaky_client(make_client, [])
    created = client.create_experiment(f"{experiment.name}-2")
    client.find_experiment(created.name)  # a search: a POST that only reads
    client.get_experiment(created.id)
    drift = client.create_drift(created.id, "m")
    client.heartbeat(created.id, drift.id)
    keyed = [
        call.split(" ", 1)[1].rsplit("/", 1)[-1]
        for call, key in zip(transport.calls, transport.keys, strict=True)
        if key is not None
    ]
    assert keyed == ["experiment", "drift"]
    assert len(set(filter(None, transport.keys))) == 2


def test_put_drift_retried_on_503_and_read_errors(
    make_client: Callable[..., Client], experiment: Experiment
) -> None:
    client, transport, _ = flaky_client(make_client, [])
    drift = client.create_drift(experiment.id, "m")
    transport.failures = [503, httpx2.ReadError]
    done = client.replace_drift(experiment.id, drift.id, "m", job_status="Completed")
    assert done.job_status == "Completed"
    assert len(transport.calls) == 4
