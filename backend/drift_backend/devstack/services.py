"""Start the real helper servers as processes: SecantusDB (MongoDB wire protocol) and the
development OIDC provider. Used by the local stack, the tests and the benchmarks alike."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import httpx2

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _tool(name: str) -> str:
    """A console script of this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not installed; run 'uv sync' (it comes with drift-backend[dev])"
        )
    return found


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path | None,
    url: str,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    process = subprocess.Popen(
        list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    if not isinstance(log, int):
        log.close()
    return ManagedProcess(name, process, url, log_path)


def _wait(proc: ManagedProcess, ready: Callable[[], bool], timeout: float) -> ManagedProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log_tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return proc
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} did not become ready in {timeout:.0f} s:\n{proc.log_tail()}")


#: SecantusDB is Python too: the same allocator settings as drift_backend.memory gives our
#: processes (glibc's environment variables), so the batches and profiles it receives, stores
#: and sends do not fault in fresh pages for every copy (half a million faults a wide check).
MALLOC_REUSE_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(512 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(512 * 1024 * 1024),
}


def start_mongodb(
    port: int,
    data_dir: Path | None,
    log_path: Path | None = None,
    timeout: float = 60.0,
    *,
    standalone: bool = False,
) -> ManagedProcess:
    """SecantusDB on loopback; ``data_dir=None`` keeps the data in a throw-away directory.

    ``standalone``: a standalone server instead of a single-node replica set, so without an
    oplog and change streams (run the backend and worker with ``DRIFT_CHANGE_STREAMS=false``:
    they poll). SecantusDB writes each inserted document into its oplog and journal once
    more, in Python: for a wide check's 80 MB batch, a standalone server spent 0.2-1.0 fewer
    of its 1.4-2.3 CPU seconds per check and wrote half the bytes, in back-to-back runs of
    ``benchmarks/wide_breakdown.py [--standalone-db]``."""
    storage = ":memory:" if data_dir is None else str(data_dir)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        _tool("secantusd-py"),
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        "WARNING",
        *(["--standalone"] if standalone else []),
    ]
    # Retryable writes off: SecantusDB 0.7.0b3 scans (and past 10,000 sorts) its record of
    # retryable writes on every write, which slows a long-running stack to ~100 writes/s.
    url = f"mongodb://{LOCALHOST}:{port}/?retryWrites=false"
    proc = _spawn("SecantusDB", argv, log_path, url, env={**os.environ, **MALLOC_REUSE_ENV})
    return _wait(proc, lambda: port_open(port), timeout)


def start_oidc_provider(
    port: int,
    users: Sequence[dict[str, Any]],
    log_path: Path | None = None,
    token_max_age: int = 8 * 3600,
    timeout: float = 30.0,
) -> ManagedProcess:
    """The development OIDC provider (``oidc-provider-mock``) with predefined users."""
    argv = [
        _tool("oidc-provider-mock"),
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--token-max-age",
        str(token_max_age),
    ]
    for user in users:
        argv += ["--user-claims", json.dumps(user)]
    url = f"http://{LOCALHOST}:{port}"
    proc = _spawn("OIDC provider", argv, log_path, url)

    def ready() -> bool:
        return httpx2.get(f"{url}/.well-known/openid-configuration", timeout=1).status_code == 200

    return _wait(proc, ready, timeout)


DEV_CLIENT_ID = "drift-monitor-dev"
DEV_REDIRECT_URI = "http://127.0.0.1/callback"


def fetch_token(
    issuer: str, subject: str, *, client_secret: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Log ``subject`` in at the development provider with a real authorization-code flow."""
    with httpx2.Client(timeout=timeout, follow_redirects=False) as http:
        meta = http.get(f"{issuer}/.well-known/openid-configuration").raise_for_status().json()
        params = {
            "client_id": DEV_CLIENT_ID,
            "redirect_uri": DEV_REDIRECT_URI,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "dev",
        }
        answer = http.post(meta["authorization_endpoint"], params=params, data={"sub": subject})
        location = answer.headers.get("location")
        if answer.status_code not in (302, 303) or not location:
            raise RuntimeError(f"authorization failed ({answer.status_code}): {answer.text[:200]}")
        code = parse_qs(urlsplit(location).query).get("code", [""])[0]
        if not code:
            raise RuntimeError(f"authorization did not return a code: {location}")
        token = http.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": DEV_REDIRECT_URI,
                "client_id": DEV_CLIENT_ID,
                "client_secret": client_secret,
            },
        ).raise_for_status()
        result: dict[str, Any] = token.json()
        return result


def start_backend(
    port: int,
    env: dict[str, str],
    log_path: Path | None = None,
    *,
    workers: int = 1,
    timeout: float = 60.0,
) -> ManagedProcess:
    """The API as its own uvicorn process (settings from ``env``), ready when
    ``/health/ready`` answers 200."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "drift_backend.main:app_from_env",
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        # Event streams stay open until their client leaves: shutdown stops waiting for them.
        "--timeout-graceful-shutdown",
        "5",
        "--workers",
        str(workers),
    ]
    url = f"http://{LOCALHOST}:{port}"
    proc = _spawn(f"backend x{workers}", argv, log_path, url, env=env)

    def ready() -> bool:
        return httpx2.get(f"{url}/health/ready", timeout=2).status_code == 200

    return _wait(proc, ready, timeout)
