"""MongoDB stopped mid-service (SIGSTOP on its own SecantusDB process): every route answers a
JSON 503 with ``Retry-After`` within the configured bound, keep-alive connections stay usable,
and after SIGCONT the same backend serves again, its embedded worker included. Unexpected
errors answer a JSON 500 carrying the request id, which is logged with the traceback."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from drift_backend import logs
from drift_backend.devstack.services import LOCALHOST, ManagedProcess, free_port, start_mongodb
from drift_backend.drifts.sweeper import sweep_forever
from drift_backend.jobs.handlers import JobKind, WorkerContext
from drift_backend.jobs.queue import DONE, Claim, JobQueue
from drift_backend.logs import RequestIdFilter
from drift_backend.main import create_app
from drift_backend.settings import Mode, Settings
from drift_backend.store.database import connect
from drift_backend.worker.runner import run_worker
from pymongo.errors import DuplicateKeyError

from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

#: DRIFT_MONGODB_TIMEOUT_SECONDS for these backends.
BOUND = 1.0
#: Hang guard: a request that takes this long ignored the bound (no timing assertion below it).
GUARD = 15 * BOUND
#: How long the service may take to notice the database is back.
RECOVERY = 60.0


@pytest.fixture(scope="module")
def own_mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """A SecantusDB of this module's own, since the tests stop it."""
    logs = tmp_path_factory.mktemp("logs")
    proc = start_mongodb(free_port(), None, log_path=logs / "secantus.log")
    yield proc
    proc.process.send_signal(signal.SIGCONT)  # a stopped process ignores SIGTERM until then
    proc.stop()


@contextlib.contextmanager
def stopped(proc: ManagedProcess) -> Iterator[None]:
    proc.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.process.send_signal(signal.SIGCONT)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any
    seconds: float


class Connection:
    """One keep-alive HTTP/1.1 connection that fails loudly if the server drops it: the
    stdlib client only reconnects by itself when the server said ``Connection: close``."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection(LOCALHOST, port, timeout=GUARD)
        self.sockets: list[object] = []

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        start = time.monotonic()
        self.http.request(method, path, body=data, headers=sent)
        self.sockets.append(self.http.sock)
        response = self.http.getresponse()
        raw = response.read()
        seconds = time.monotonic() - start
        parsed = json.loads(raw) if raw else None
        return Answer(response.status, response.headers, parsed, seconds)

    @property
    def reused(self) -> bool:
        """Every request so far went over the same socket."""
        return len(self.sockets) > 1 and all(sock is self.sockets[0] for sock in self.sockets)

    def close(self) -> None:
        self.http.close()


def assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.body["code"] == "service_unavailable"
    assert answer.body["status"] == 503
    assert isinstance(answer.body["message"], str)
    assert int(answer.headers["retry-after"]) > 0
    assert answer.headers["x-request-id"]


@dataclass
class Backend:
    server: ThreadedServer
    issuer: JWTIssuer

    def connection(self) -> Connection:
        return Connection(self.server.port)

    def token(self, who: str) -> str:
        return self.issuer.token(who)


@pytest.fixture(scope="module")
def backend(
    own_mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[Backend]:
    settings = make_settings(
        own_mongodb,
        [issuer.url, oidc_provider.url],
        mongodb_timeout_seconds=BOUND,
        embedded_worker=True,
        job_lease_seconds=5,
        # Every authenticated request looks its user up: the outage must show there too.
        user_cache_seconds=0,
    )
    with ThreadedServer(create_app(settings)) as server:
        yield Backend(server, issuer)


def wait_ready(conn: Connection) -> None:
    deadline = time.monotonic() + RECOVERY
    while True:
        answer = conn.call("GET", "/health/ready")
        if answer.status == 200:
            return
        assert time.monotonic() < deadline, f"not ready again after {RECOVERY} s: {answer.body}"
        time.sleep(0.2)


def representative_calls(
    backend: Backend, exp_id: str, drift_id: str, public_id: str
) -> list[tuple[str, str, str | None, Any]]:
    """(method, path, who, body): reads and writes, anonymous and authenticated, the auth
    path's user look-up, baselines and check submission."""
    base = f"/api/v1/experiment/{exp_id}"
    return [
        ("POST", "/api/v1/experiment/search", None, {}),
        ("POST", "/api/v1/experiment/search", "alice", {}),
        ("GET", f"/api/v1/experiment/{public_id}", None, None),
        ("GET", base, "alice", None),
        ("GET", "/api/v1/user/self", "alice", None),
        ("POST", f"{base}/drift", "alice", {"model": "m1", "job_status": "Running"}),
        ("GET", f"{base}/drift/{drift_id}", "alice", None),
        ("POST", f"{base}/drift/search", "alice", {}),
        ("GET", f"{base}/baseline", "alice", None),
        ("POST", f"{base}/check?model=m1", "alice", {"columns": {"x": [0.1, 0.2, 0.3]}}),
    ]


def test_stopped_database_answers_503_then_recovers(
    backend: Backend, own_mongodb: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    conn = backend.connection()
    alice = backend.token("alice")
    wait_ready(conn)
    assert conn.call("POST", "/api/v1/user", alice).status == 201
    exp = conn.call("POST", "/api/v1/experiment", alice, {"name": "outage"}).body
    public = conn.call("POST", "/api/v1/experiment", alice, {"name": "open", "public": True}).body
    base = f"/api/v1/experiment/{exp['id']}"
    drift = conn.call("POST", f"{base}/drift", alice, {"model": "m1", "job_status": "Running"})
    assert drift.status == 201, drift.body
    columns = {"x": [float(i % 17) for i in range(200)]}
    uploaded = conn.call("POST", f"{base}/baseline?name=ref&model=m1", alice, {"columns": columns})
    assert uploaded.status == 201, uploaded.body
    calls = representative_calls(backend, exp["id"], drift.body["id"], public["id"])

    with stopped(own_mongodb):
        for method, path, who, body in calls:
            token = backend.token(who) if who else None
            assert_unavailable(conn.call(method, path, token, body))
        # The same keep-alive connection, again: nothing was reset by the 503s.
        assert_unavailable(conn.call("GET", f"{base}/baseline", alice))
        ready = conn.call("GET", "/health/ready")
        assert ready.status == 503
        assert ready.body["code"] == "service_unavailable"
        assert conn.call("GET", "/health/live").status == 200
        # Another, fresh connection during the outage: the same answer.
        other = backend.connection()
        assert_unavailable(other.call("POST", "/api/v1/experiment/search", None, {}))
        other.close()
    assert conn.reused
    assert "database unavailable" in caplog.text

    # Back, without a restart: the same connection, every route answers again.
    wait_ready(conn)
    for method, path, who, body in calls:
        token = backend.token(who) if who else None
        answer = conn.call(method, path, token, body)
        if path.endswith("/check?model=m1"):
            assert answer.status == 202, answer.body
        else:
            assert answer.status in (200, 201), (path, answer.body)
    # The embedded worker survived the outage: a check runs to completion. Generous: its
    # first job starts the statistics process, which takes seconds on a busy machine.
    conn.http.sock.settimeout(RECOVERY + GUARD)
    checked = conn.call(
        "POST", f"{base}/check?model=m1&wait={RECOVERY}", alice, {"columns": {"x": [1.0, 2.0] * 50}}
    )
    assert checked.status == 200, checked.body
    assert checked.body["job_status"] == "Completed"
    assert conn.reused
    conn.close()


def test_backend_started_while_database_stopped_creates_indexes_once_back(
    own_mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> None:
    settings = make_settings(
        own_mongodb,
        [issuer.url, oidc_provider.url],
        mongodb_timeout_seconds=BOUND,
        startup_index_wait_seconds=0,
    )
    with stopped(own_mongodb), ThreadedServer(create_app(settings)) as server:
        conn = Connection(server.port)
        ready = conn.call("GET", "/health/ready")
        assert ready.status == 503
        assert int(ready.headers["retry-after"]) > 0
        assert_unavailable(conn.call("POST", "/api/v1/experiment/search", None, {}))
        own_mongodb.process.send_signal(signal.SIGCONT)
        wait_ready(conn)  # the index task kept retrying through the outage
        assert conn.call("POST", "/api/v1/experiment/search", None, {}).status == 200
        conn.close()


# Unexpected errors -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faulty_backend(
    own_mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[Backend]:
    """The real application with two extra routes that fail the way a bug would: a plain
    exception, and a database error that is not an outage (a duplicate key)."""
    settings = make_settings(own_mongodb, [issuer.url, oidc_provider.url])
    app = create_app(settings)

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom: a bug in a handler")

    @app.get("/test/duplicate")
    async def duplicate() -> None:
        client = connect(settings.mongodb_url.get_secret_value())
        try:
            collection = client[settings.mongodb_database].scratch
            await collection.insert_one({"_id": "same"})
            await collection.insert_one({"_id": "same"})
        finally:
            await client.close()

    @app.get("/test/log")
    async def log_line() -> None:
        logging.getLogger("drift_backend.test").warning("a line logged while handling")

    with ThreadedServer(app) as server:
        yield Backend(server, issuer)


def test_unexpected_exception_is_a_json_500_with_the_logged_request_id(
    faulty_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    conn = faulty_backend.connection()
    caplog.set_level(logging.ERROR, logger="drift_backend")
    answer = conn.call("GET", "/test/boom")
    assert answer.status == 500
    assert answer.headers["content-type"] == "application/json"
    request_id = answer.headers["x-request-id"]
    assert answer.body == {
        "code": "internal_error",
        "status": 500,
        "message": f"unexpected error; quote request id {request_id} when reporting it",
        "request_id": request_id,
    }
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged, caplog.text
    assert logged[0].exc_info is not None
    assert "kaboom: a bug in a handler" in str(logged[0].exc_info[1])

    # The connection survives the 500; the next request on it is answered.
    assert conn.call("GET", "/health/live").status == 200
    # A database error that is a bug, not an outage, is a 500 too, never a 503.
    duplicate = conn.call("GET", "/test/duplicate")
    assert duplicate.status == 500
    assert duplicate.body["request_id"] == duplicate.headers["x-request-id"]
    assert any(
        isinstance(r.exc_info[1], DuplicateKeyError)
        for r in caplog.records
        if r.exc_info and duplicate.body["request_id"] in r.getMessage()
    )
    assert conn.call("GET", "/health/live").status == 200
    assert conn.reused
    conn.close()


def test_request_ids_are_echoed_when_sane_and_made_otherwise(faulty_backend: Backend) -> None:
    conn = faulty_backend.connection()
    given = "trace-4bf92f3577b34da6.a3ce929d:0e0e4736/x=="
    answer = conn.call("GET", "/health/live", headers={"X-Request-ID": given})
    assert answer.headers.get_all("x-request-id") == [given]
    # Also on 404s, and on errors answered before any route runs (the body limit; on a
    # connection of its own, as the server may close one whose body it did not read).
    rejected = faulty_backend.connection()
    too_big = rejected.call("POST", "/api/v1/experiment", body={"name": "x" * 2_000_000})
    rejected.close()
    assert too_big.status == 413
    assert too_big.headers["x-request-id"]
    missing = conn.call("GET", "/nowhere", headers={"X-Request-ID": given})
    assert missing.status == 404
    assert missing.headers["x-request-id"] == given
    # Not sane: too long, or characters that do not belong in a header or a log line.
    made = set()
    for bad in ("a" * 129, "two words", "semi;colon", 'quote"d', ""):
        header = {"X-Request-ID": bad} if bad else {}
        answer = conn.call("GET", "/health/live", headers=header)
        request_id = answer.headers["x-request-id"]
        assert request_id != bad
        assert len(request_id) == 32
        int(request_id, 16)
        made.add(request_id)
    assert len(made) == 5  # a fresh one each time
    conn.close()


# Background work -------------------------------------------------------------------------
async def test_a_job_keeps_running_through_failed_heartbeats(
    own_mongodb: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A database blip during a job costs a few heartbeats, not the job: it finishes, once."""
    client = connect(own_mongodb.url, timeout_seconds=0.5)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    settings = Settings(mode=Mode.development, change_streams=False)
    queue = JobQueue(db, lease_seconds=60, max_attempts=3)
    ctx = WorkerContext(db=db, queue=queue, pool=ProcessPoolExecutor(1), settings=settings)
    started, release = asyncio.Event(), asyncio.Event()
    outcomes: list[str] = []

    async def handler(claim: Claim, _: WorkerContext) -> None:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            raise
        outcomes.append("finished")

    async def give_up(job: dict[str, Any], _: WorkerContext) -> None:
        outcomes.append("gave up")

    job_id = await queue.enqueue("test", {}, drift_id="run-1")
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            ctx,
            {"test": JobKind(handler, give_up)},
            concurrency=1,
            heartbeat_seconds=0.1,
            stop=stop,
        )
    )
    try:
        await asyncio.wait_for(started.wait(), GUARD)
        with stopped(own_mongodb):
            deadline = time.monotonic() + GUARD
            while "heartbeat of job" not in caplog.text and not outcomes:
                assert time.monotonic() < deadline, "no heartbeat failed during the outage"
                await asyncio.sleep(0.05)
        assert outcomes == []  # still at work, not stopped for the blip
        release.set()
        deadline = time.monotonic() + RECOVERY
        while (job := await db.jobs.find_one({"_id": job_id})) is None or job["status"] != DONE:
            assert time.monotonic() < deadline, "the job did not finish after the outage"
            await asyncio.sleep(0.1)
        assert outcomes == ["finished"]
    finally:
        stop.set()
        release.set()
        await asyncio.wait_for(worker, GUARD)
        ctx.pool.shutdown()
        await client.drop_database(db.name)
        await client.close()


def test_every_log_line_of_a_request_carries_its_id(faulty_backend: Backend) -> None:
    """The server's logging configuration (``drift_backend.logs``): any logger, any line."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    logger = logging.getLogger("drift_backend.test")
    logger.addHandler(handler)
    try:
        answer = faulty_backend.connection().call("GET", "/test/log")
        logger.warning("a line outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = lines.getvalue().splitlines()
    assert f"[{answer.headers['x-request-id']}] a line logged while handling" in inside
    assert "[-] a line outside any request" in outside


def test_the_serve_and_worker_logging_configuration_loads() -> None:
    code = (
        "import logging, logging.config\n"
        "from drift_backend import logs\n"
        "logging.config.dictConfig(logs.config('info'))\n"
        "logging.getLogger('drift_backend.x').warning('configured')\n"
        "logging.getLogger('drift_backend.x').debug('too detailed')\n"
        "logging.config.dictConfig(logs.config('warning'))\n"  # the local stack's level
        "logging.getLogger('uvicorn.access').info('an access line')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "WARNING drift_backend.x [-] configured" in done.stderr
    assert "too detailed" not in done.stderr
    assert "an access line" not in done.stdout


async def test_the_sweeper_warns_once_per_outage_and_says_when_it_is_back(
    own_mongodb: ManagedProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="drift_backend.drifts.sweeper")

    def failures(level: int) -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.levelno == level and r.getMessage() == "stale-run sweep failed"
        ]

    async def until(condition: Any) -> None:
        deadline = time.monotonic() + RECOVERY  # a hang guard, not a timing threshold
        while not condition():
            assert time.monotonic() < deadline, caplog.text
            await asyncio.sleep(0.05)

    client = connect(own_mongodb.url, timeout_seconds=0.3)
    sweeping = asyncio.create_task(
        sweep_forever(client[f"sweep_{uuid.uuid4().hex[:8]}"], 60.0, 0.05)
    )
    try:
        with stopped(own_mongodb):
            await until(lambda: len(failures(logging.DEBUG)) >= 2)
        await until(lambda: "stale-run sweep works again" in caplog.messages)
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        await client.close()
    assert len(failures(logging.WARNING)) == 1
    assert failures(logging.WARNING)[0].exc_info is not None
