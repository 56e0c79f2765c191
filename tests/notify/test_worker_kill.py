"""A worker process SIGKILLed while its delivery is in flight loses nothing: the delivery's
lease runs out and the next worker sends it, with the same ``webhook-id``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from drift_backend.notify import service
from drift_backend.schemas import utcnow

from tests.notify.conftest import Setup, message, new_secret
from tests.support.receiver import Receiver, Reply

SERVER = str(Path(sys.executable).parent / "drift-monitor-server")


def _start_worker(setup: Setup, log: Path) -> subprocess.Popen[bytes]:
    settings = setup.api.settings
    env = {
        **os.environ,
        "DRIFT_MODE": "development",
        "DRIFT_MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "DRIFT_MONGODB_DATABASE": settings.mongodb_database,
        "DRIFT_OUTBOUND_ALLOW": "127.0.0.1",
        "DRIFT_DELIVERY_POLL_SECONDS": "0.05",
        # Long enough for the request to be in flight when the process dies.
        "DRIFT_DELIVERY_TOTAL_TIMEOUT_SECONDS": "120",
        "DRIFT_DELIVERY_READ_TIMEOUT_SECONDS": "120",
        "DRIFT_SECRETS_DIR": str(log.parent / "no-secrets"),
    }
    return subprocess.Popen(
        [SERVER, "worker", "--processes", "1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_a_sigkilled_worker_loses_no_delivery(
    setup: Setup, receiver: Receiver, tmp_path: Path
) -> None:
    await setup.target(name="hook", kind="webhook", url=receiver.url(), secret=new_secret())
    receiver.reply(Reply(hang=True))
    await service.enqueue(setup.db, message(setup.experiment, "n-sigkill"))
    worker = _start_worker(setup, tmp_path / "worker.log")
    try:
        await receiver.wait_for(1, timeout=60)  # claimed and sent: now it dies mid-request
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    receiver.release()
    [logged] = await setup.log()
    assert logged["deliveries"][0]["state"] == "sending"  # the dead worker's claim

    # The next worker, once the lease has run out (its clock moved on, not waited for).
    later = utcnow() + timedelta(minutes=10)
    assert await setup.deliverer().deliver_one(later)
    requests = await receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in requests] == ["n-sigkill", "n-sigkill"]
    [logged] = await setup.log()
    assert logged["deliveries"][0]["state"] == "delivered"
    assert logged["deliveries"][0]["attempts"] == 2
