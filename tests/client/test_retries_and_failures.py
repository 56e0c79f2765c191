"""Retries of uploads and checks, their read timeouts, and checks that end Failed.

Everything runs against a real backend over HTTP with real tokens. The only fake is
``Wire``, a transport in front of the real ``httpx2.HTTPTransport`` that records what was
sent and can inject a fault: a connect error before the request leaves, or a 503 / read
timeout in place of the answer *after* the server handled the request (as a proxy or a
dropped connection would). Uploads carry an ``Idempotency-Key``, so such a retry is safe:
the server answers it with the stored first answer, and a wrong retry (a new key, or a
server that did the work twice) would show as a duplicate on the server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
import numpy as np
import pandas as pd
import pytest
from drift_backend.devstack.services import ManagedProcess
from drift_backend.main import create_app, job_kinds
from drift_backend.settings import Settings
from drift_backend.store.database import connect
from drift_backend.worker.service import running_worker
from drift_monitor import (
    CheckFailed,
    Client,
    DriftMonitor,
    Experiment,
    RunError,
    ServerError,
    TransportError,
    _data,
    register,
)

from tests.client.conftest import unique
from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

Fault = Literal["connect", "503", "read-timeout"]
CHUNK = 4096


def frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, n),
            "y": rng.exponential(2.0, n),
            "c": rng.choice(["a", "b", "c"], size=n),
        }
    )


REFERENCE = frame(1, 3000)
CURRENT = frame(2, 2000)


class CountingStream(httpx2.SyncByteStream):
    """The request body as sent, counting the bytes that left the client."""

    def __init__(self, inner: httpx2.SyncByteStream) -> None:
        self.inner = inner
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.sent += len(chunk)
            yield chunk


@dataclass
class Sent:
    call: str
    params: dict[str, list[str]]
    content_length: int | None
    timeout: dict[str, float | None]
    body: CountingStream
    key: str | None = None
    #: The answer's ``Idempotent-Replayed`` header, when an answer came back.
    replayed: str | None = None


@dataclass
class Wire(httpx2.BaseTransport):
    """Record every request, then delegate to the real transport (or inject an armed fault)."""

    inner: httpx2.HTTPTransport = field(default_factory=httpx2.HTTPTransport)
    sent: list[Sent] = field(default_factory=list)
    #: ``(method, path suffix)`` -> faults for the next matching requests, in order.
    faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)
    #: ``(method, path suffix)`` -> called once the server answered a matching request.
    after: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)

    def arm(self, method: str, suffix: str, *faults: Fault) -> None:
        self.faults[(method, suffix)] = list(faults)

    def calls(self) -> list[str]:
        return [s.call for s in self.sent]

    def _match(self, table: dict[tuple[str, str], Any], request: httpx2.Request) -> Any:
        for (method, suffix), value in table.items():
            if request.method == method and request.url.path.endswith(suffix):
                return value
        return None

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.SyncByteStream)
        body = CountingStream(request.stream)
        request.stream = body
        length = request.headers.get("content-length")
        params: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            params.setdefault(key, []).append(value)
        sent = Sent(
            f"{request.method} {request.url.path}",
            params,
            int(length) if length is not None else None,
            dict(request.extensions["timeout"]),
            body,
            request.headers.get("idempotency-key"),
        )
        self.sent.append(sent)
        pending = self._match(self.faults, request)
        fault: Fault | None = pending.pop(0) if pending else None
        if fault == "connect":
            # Take a chunk of the body first: a retry must send a fresh, whole body.
            next(iter(body), None)
            raise httpx2.ConnectError("connection refused (injected)", request=request)
        response = self.inner.handle_request(request)
        sent.replayed = response.headers.get("idempotent-replayed")
        hook = self._match(self.after, request)
        if hook is not None and fault is None:
            response.read()
            hook()
        if fault is None:
            return response
        response.read()  # the server handled the request; its answer is lost on the way
        response.close()
        if fault == "503":
            answer = {"code": "unavailable", "status": 503, "message": "injected"}
            return httpx2.Response(503, json=answer, request=request)
        raise httpx2.ReadTimeout("timed out (injected after the server answered)", request=request)

    def close(self) -> None:
        self.inner.close()


# Backends ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[ThreadedServer]:
    """A backend with the embedded worker: checks finish."""
    settings = make_settings(
        mongodb, [issuer.url, oidc_provider.url], embedded_worker=True, job_lease_seconds=5
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server


@dataclass
class Quiet:
    """A backend without a worker (checks stay Running until one is started)."""

    server: ThreadedServer
    settings: Settings


@pytest.fixture(scope="module")
def quiet_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[Quiet]:
    settings = make_settings(mongodb, [issuer.url, oidc_provider.url], job_lease_seconds=5)
    with ThreadedServer(create_app(settings)) as server:
        yield Quiet(server, settings)


@pytest.fixture
def client_on(issuer: JWTIssuer) -> Iterator[Callable[..., tuple[Client, Wire, list[float]]]]:
    """Build alice's clients on a server, each with a ``Wire``; all closed after the test."""
    made: list[Client] = []

    def build(server: ThreadedServer, **kwargs: Any) -> tuple[Client, Wire, list[float]]:
        wire = Wire()
        sleeps: list[float] = []
        client = Client(
            server.url,
            token=lambda: issuer.token("alice"),
            transport=wire,
            sleep=sleeps.append,
            **kwargs,
        )
        made.append(client)
        register(accept_terms=True, client=client)
        wire.sent.clear()
        return client, wire, sleeps

    yield build
    for client in made:
        client.close()


@pytest.fixture
def wired(
    make_client: Callable[..., Client],
) -> Callable[[], tuple[Client, Wire, list[float]]]:
    """alice on the session's (worker-less) live backend, through a ``Wire``."""

    def build() -> tuple[Client, Wire, list[float]]:
        wire = Wire()
        sleeps: list[float] = []
        client = make_client("alice", transport=wire, sleep=sleeps.append)
        wire.sent.clear()  # registration went through cleanly
        return client, wire, sleeps

    return build


class BackgroundWorker:
    """The real worker loop (``running_worker``) on the quiet backend's database, in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # re-raised in the test by join()
            self.error = error

    async def _serve(self) -> None:
        mongo = connect(self.settings.mongodb_url.get_secret_value())
        try:
            db = mongo[self.settings.mongodb_database]
            async with running_worker(db, self.settings, job_kinds(), processes=1):
                while not self.stop.is_set():
                    await asyncio.sleep(0.05)
        finally:
            await mongo.close()

    def join(self) -> None:
        self.stop.set()
        if self.thread.is_alive() or self.thread.ident is not None:
            self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the worker did not stop"
        if self.error is not None:
            raise self.error


# 1. Connect errors: retried, with the whole body sent again ------------------------------
def test_upload_baseline_is_resent_whole_after_a_connect_error(
    wired: Callable[[], tuple[Client, Wire, list[float]]],
    experiment: Experiment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_data, "CHUNK_SIZE", CHUNK)
    client, wire, sleeps = wired()
    wire.arm("POST", "/baseline", "connect")

    baseline = client.upload_baseline(experiment.id, REFERENCE, name="retried", model="m")

    post = f"POST /api/v1/experiment/{experiment.id}/baseline"
    assert wire.calls() == [post, post]
    first, second = wire.sent
    assert first.content_length == second.content_length
    assert second.content_length is not None
    assert second.content_length > 4 * CHUNK
    assert first.body.sent == CHUNK, "the first attempt took one chunk, then failed"
    assert second.body.sent == second.content_length, "the retry sent the whole body"
    assert len(sleeps) == 1
    assert baseline.row_count == len(REFERENCE) == 3000
    assert {f.name for f in baseline.features} == {"x", "y", "c"}
    assert [b.id for b in client.list_baselines(experiment.id)] == [baseline.id]


def test_check_is_resent_whole_after_a_connect_error(
    wired: Callable[[], tuple[Client, Wire, list[float]]],
    experiment: Experiment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_data, "CHUNK_SIZE", CHUNK)
    client, wire, sleeps = wired()
    baseline = client.upload_baseline(experiment.id, REFERENCE, model="m")
    wire.sent.clear()
    wire.arm("POST", "/check", "connect")

    run = client.check(experiment.id, CURRENT, model="m", tags=["retried"])

    post = f"POST /api/v1/experiment/{experiment.id}/check"
    assert wire.calls() == [post, post]
    first, second = wire.sent
    assert second.content_length is not None
    assert second.content_length > 4 * CHUNK
    assert first.body.sent == CHUNK
    assert second.body.sent == second.content_length
    assert len(sleeps) == 1
    assert run.job_status == "Running"  # no worker on this backend
    assert run.parameters["check"]["rows"] == len(CURRENT) == 2000
    assert run.parameters["check"]["baseline_id"] == baseline.id
    runs = client.search_drifts(experiment.id, {"model": "m"}, page_size=100)
    assert [d.id for d in runs] == [run.id], "exactly one run"


# 2. A 503 or read timeout after the server handled the POST: retried with the same key ------
@pytest.mark.parametrize("fault", ["503", "read-timeout"])
def test_check_answered_503_or_timed_out_is_retried_without_a_duplicate(
    wired: Callable[[], tuple[Client, Wire, list[float]]],
    experiment: Experiment,
    fault: Fault,
) -> None:
    client, wire, sleeps = wired()
    client.upload_baseline(experiment.id, REFERENCE, model="m")
    wire.sent.clear()
    wire.arm("POST", "/check", fault)

    run = client.check(experiment.id, CURRENT, model="m")

    assert wire.calls() == [f"POST /api/v1/experiment/{experiment.id}/check"] * 2
    first, second = wire.sent
    assert first.key is not None
    assert second.key == first.key, "the retry is the same operation"
    assert second.replayed == "true", "the server answered the stored first answer"
    assert len(sleeps) == 1
    runs = list(client.search_drifts(experiment.id, {"model": "m"}, page_size=100))
    assert [d.id for d in runs] == [run.id], "the server queued the check once"
    assert runs[0].parameters["check"]["rows"] == len(CURRENT)


@pytest.mark.parametrize("fault", ["503", "read-timeout"])
def test_upload_answered_503_or_timed_out_is_retried_without_a_duplicate(
    wired: Callable[[], tuple[Client, Wire, list[float]]],
    experiment: Experiment,
    fault: Fault,
) -> None:
    client, wire, sleeps = wired()
    wire.arm("POST", "/baseline", fault, fault, fault, fault)

    with pytest.raises(ServerError if fault == "503" else TransportError) as raised:
        client.upload_baseline(experiment.id, REFERENCE, model="m")
    if fault == "read-timeout":
        assert isinstance(raised.value.__cause__, httpx2.ReadTimeout)

    post = f"POST /api/v1/experiment/{experiment.id}/baseline"
    assert wire.calls() == [post] * 4, "the first attempt and the 3 retries"
    assert len({s.key for s in wire.sent}) == 1, "all with the first attempt's key"
    assert wire.sent[0].key is not None
    assert len(sleeps) == 3
    stored = client.list_baselines(experiment.id)
    assert len(stored) == 1, "the server stored the baseline once; the repeats were answered"
    assert stored[0].row_count == len(REFERENCE)


# 3. Upload and check read timeouts ---------------------------------------------------------
def test_upload_and_check_read_timeouts(
    worker_backend: ThreadedServer,
    client_on: Callable[..., tuple[Client, Wire, list[float]]],
) -> None:
    client, wire, _ = client_on(worker_backend)  # default timeout: 10 s
    exp = client.create_experiment(unique("timeouts"))
    wire.sent.clear()

    client.upload_baseline(exp.id, REFERENCE, model="m")
    # 55 s: a hang guard with room for a loaded machine (the run must be Completed below).
    run = client.check(exp.id, CURRENT, model="m", wait=55)
    capped = client.check(exp.id, CURRENT, model="m", wait=90)
    client.get_drift(exp.id, run.id)

    upload, check, check_capped, get = wire.sent
    assert upload.call.endswith("/baseline")
    assert upload.timeout == {"connect": 10.0, "read": 300.0, "write": 10.0, "pool": 10.0}
    assert check.params["wait"] == ["55"]
    assert check.timeout == {"connect": 10.0, "read": 355.0, "write": 10.0, "pool": 10.0}
    assert check_capped.params["wait"] == ["90"]
    assert check_capped.timeout["read"] == 360.0, "the server answers within 60 s at most"
    assert get.timeout == {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert run.job_status == "Completed"  # the server held the answer until the worker ran
    assert capped.job_status == "Completed"

    slow, slow_wire, _ = client_on(worker_backend, timeout=400)
    slow.check(exp.id, CURRENT, model="m", wait=30)
    (slow_check,) = slow_wire.sent
    assert slow_check.timeout == {"connect": 400.0, "read": 430.0, "write": 400.0, "pool": 400.0}


# 4. CheckFailed ----------------------------------------------------------------------------
def test_monitor_check_raises_check_failed_when_the_worker_fails_the_run(
    quiet_backend: Quiet,
    client_on: Callable[..., tuple[Client, Wire, list[float]]],
) -> None:
    """The check is queued while no worker runs; its baseline is then deleted and a worker
    started: the worker fails the run (BaselineNotFound) while the SDK polls it."""
    client, wire, _ = client_on(quiet_backend.server)
    other, _, _ = client_on(quiet_backend.server)
    exp = client.create_experiment(unique("failed"))
    baseline = client.upload_baseline(exp.id, REFERENCE, model="m")
    worker = BackgroundWorker(quiet_backend.settings)

    def once_queued() -> None:
        other.delete_baseline(exp.id, baseline.id)
        worker.start()

    wire.after[("POST", "/check")] = once_queued
    monitor = DriftMonitor(exp.name, "m", ["nightly"], client=client)
    try:
        with pytest.raises(CheckFailed) as failed, monitor:
            monitor.check(CURRENT, wait=0, timeout=60)
    finally:
        worker.join()

    run = failed.value.drift
    assert run.job_status == "Failed"
    assert run.error == RunError(
        "BaselineNotFound", "the baseline was deleted before the check ran"
    )
    assert str(failed.value) == (
        f"drift check {run.id} failed on the server (BaselineNotFound: the baseline was "
        "deleted before the check ran)"
    )
    assert monitor.check_runs == [run.id]
    assert other.get_drift(exp.id, run.id).job_status == "Failed"
    calls = wire.calls()
    assert f"GET /api/v1/experiment/{exp.id}/drift/{run.id}" in calls, "it polled the run"
    assert not any(call.endswith("/report") for call in calls), "no report of a failed run"
    # The exception left the block: the monitor's own run records it.
    assert monitor.drift is not None
    own = other.get_drift(exp.id, monitor.drift.id)
    assert own.job_status == "Failed"
    assert own.error is not None
    assert own.error.type == "CheckFailed"
    assert own.parameters["check_runs"] == [run.id]


def test_monitor_check_raises_check_failed_from_the_held_answer(
    quiet_backend: Quiet,
    client_on: Callable[..., tuple[Client, Wire, list[float]]],
) -> None:
    """Another client finishes the check run as Failed while the server holds the check's
    answer (``wait``): the POST answers with the Failed run, and nothing is polled."""
    client, wire, _ = client_on(quiet_backend.server)
    other, _, _ = client_on(quiet_backend.server)
    exp = client.create_experiment(unique("failed"))
    client.upload_baseline(exp.id, REFERENCE, model="m")
    errors: list[BaseException] = []

    def fail_the_check() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                runs = other.search_drifts(exp.id, {"model": "m"}, page_size=100)
                checks = [d for d in runs if "check" in d.parameters]  # not the monitor's run
                if checks:
                    other.replace_drift(
                        exp.id,
                        checks[0].id,
                        "m",
                        job_status="Failed",
                        error=RunError("OutOfMemory", "killed by the operator"),
                    )
                    return
                time.sleep(0.05)
            raise AssertionError("the check run never appeared")
        except BaseException as error:
            errors.append(error)

    monitor = DriftMonitor(exp.name, "m", client=client)
    thread = threading.Thread(target=fail_the_check, daemon=True)
    thread.start()
    try:
        with pytest.raises(CheckFailed) as failed, monitor:
            monitor.check(CURRENT, wait=30, timeout=60)
    finally:
        thread.join(timeout=30)
    assert errors == []  # (had the held answer run out, the client would have polled: see below)

    run = failed.value.drift
    assert run.job_status == "Failed"
    assert run.error == RunError("OutOfMemory", "killed by the operator")
    assert "failed on the server (OutOfMemory: killed by the operator)" in str(failed.value)
    assert monitor.check_runs == [run.id]
    check_calls = [c for c in wire.calls() if f"/drift/{run.id}" in c or c.endswith("/check")]
    assert check_calls == [f"POST /api/v1/experiment/{exp.id}/check"], "no poll, no report"
