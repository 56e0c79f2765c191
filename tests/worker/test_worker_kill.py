"""A worker killed with SIGKILL in the middle of a job loses nothing: its lease expires and
another worker (a separate `drift-monitor-server worker` process) finishes the job, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from drift_backend.store.database import connect

from tests.conftest import Api

SERVER = str(Path(sys.executable).parent / "drift-monitor-server")


def _start_worker(api: Api, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DRIFT_MODE": "development",
        "DRIFT_MONGODB_URL": api.settings.mongodb_url.get_secret_value(),
        "DRIFT_MONGODB_DATABASE": api.settings.mongodb_database,
        "DRIFT_JOB_LEASE_SECONDS": "2",
        "DRIFT_SECRETS_DIR": str(log.parent / "no-secrets"),
    }
    return subprocess.Popen(
        [SERVER, "worker", "--processes", "1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_sigkilled_worker_loses_nothing(api_factory: Any, tmp_path: Path) -> None:
    api: Api = await api_factory(job_lease_seconds=2)
    await api.register("alice")
    exp = await api.experiment("alice")
    base = f"/api/v1/experiment/{exp['id']}"
    rng = np.random.default_rng(5)
    r = await api.request(
        "POST",
        f"{base}/baseline",
        "alice",
        json={"columns": {"x": rng.normal(0, 1, 5000).tolist()}},
    )
    assert r.status_code == 201
    r = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m"},
        json={"columns": {"x": rng.normal(1, 1, 5000).tolist()}},
    )
    assert r.status_code == 202
    drift_id = r.json()["id"]

    client = connect(api.settings.mongodb_url.get_secret_value())
    db = client[api.settings.mongodb_database]
    try:
        first = _start_worker(api, tmp_path / "first.log")
        try:
            deadline = time.monotonic() + 60
            while True:  # kill the moment it has claimed the job, before it can finish
                job = await db.jobs.find_one({"drift_id": drift_id})
                assert job is not None
                if job["status"] == "running":
                    break
                assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
                await asyncio.sleep(0.01)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        run = (await api.request("GET", f"{base}/drift/{drift_id}", "alice")).json()
        assert run["job_status"] == "Running"
        assert await db.reports.find_one({"_id": drift_id}) is None
        killed_worker = job["worker"]

        second = _start_worker(api, tmp_path / "second.log")
        try:
            deadline = time.monotonic() + 90
            while run["job_status"] == "Running":
                assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()
                await asyncio.sleep(0.2)
                run = (await api.request("GET", f"{base}/drift/{drift_id}", "alice")).json()
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        assert second.returncode == 0, (tmp_path / "second.log").read_text()
    finally:
        job = await db.jobs.find_one({"drift_id": drift_id})
        reports = await db.reports.count_documents({"_id": drift_id})
        batches = await db["batches.files"].count_documents({})
        await client.close()

    assert run["job_status"] == "Completed"
    assert run["drift_detected"] is True
    assert job is not None
    assert job["status"] == "done"
    assert job["attempts"] == 2
    assert job["worker"] != killed_worker
    assert reports == 1
    assert batches == 0  # the batch is dropped once its job ends
