"""Where the time of one wide check goes: 10,000 rows x 1,000 numerical columns through the
API, split by the run's own timestamps into upload (parse, reduce, store the batch), queue and
worker (load, statistics, report), waking the waiting request, and reading the report.

Run from the repository root: ``uv run python benchmarks/wide_breakdown.py [--checks N]
[--columns N] [--standalone-db]``. Besides the times, each check's CPU seconds per process,
and SecantusDB's kernel CPU seconds and the MB it passed to write calls (files and sockets):
about four times the batch with an oplog (the batch, its oplog entry, the journal, the copy
sent to the statistics process), half that with ``--standalone-db``.
A diagnostic, not a comparison: ``wide_vs_evidently.py`` holds the target. The client's
DataFrame-to-Arrow conversion is not timed here. The backend and a worker with two
statistics processes run as their own processes, as in that benchmark; the first check in
each statistics process also moves the baseline's profile there.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the JWT test issuer lives in tests/support

import httpx2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from drift_backend.devstack.services import free_port, start_backend, start_mongodb  # noqa: E402

from benchmarks._common import ARROW, backend_env, descendants, start_worker, to_ipc  # noqa: E402
from tests.support.jwt_issuer import JWTIssuer  # noqa: E402


def frames(columns: int, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({f"c{i}": rng.normal(size=rows) for i in range(columns)})
    shifted = columns // 20  # 5 % drifted by 0.3 sd
    current = pd.DataFrame(
        {f"c{i}": rng.normal(size=rows) + (0.3 if i < shifted else 0.0) for i in range(columns)}
    )
    return reference, current


def cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    """User + system CPU seconds of a process so far, or its system (kernel) seconds alone
    (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[12]) if system_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_by_part(parts: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds of each part (a list of processes), this process's own as ``client``."""
    return {"client": time.process_time()} | {
        name: sum(cpu_seconds(pid) for pid in pids) for name, pids in parts.items()
    }


def system_seconds(pid: int) -> float:
    return cpu_seconds(pid, system_only=True)


def written_mb(pid: int) -> float:
    """MB a process has passed to write calls so far (``wchar``: files and sockets)."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = dict(line.split(": ") for line in lines)
    return int(fields["wchar"]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=6)
    parser.add_argument("--columns", type=int, default=1000)
    parser.add_argument(
        "--standalone-db",
        action="store_true",
        help="SecantusDB standalone: no oplog, no change streams (the worker and requests poll)",
    )
    args = parser.parse_args()
    reference, current = frames(args.columns, 10_000)
    tmp = Path(tempfile.mkdtemp())
    mongo = start_mongodb(free_port(), tmp / "db", standalone=args.standalone_db)
    with JWTIssuer() as issuer:
        issuer.profile("bench", email="bench@example.org")
        env = backend_env(
            mongo.url, issuer.url, tmp, database="breakdown", embedded=False, worker_processes=2
        )
        if args.standalone_db:
            env["DRIFT_CHANGE_STREAMS"] = "false"
        backend = start_backend(free_port(), env, tmp / "backend.log")
        worker = start_worker(env, tmp / "worker.log", 2)
        try:
            auth = {"Authorization": f"Bearer {issuer.token('bench')}"}
            http = httpx2.Client(base_url=backend.url, headers=auth, timeout=900)
            http.post("/api/v1/user").raise_for_status()
            created = http.post("/api/v1/experiment", json={"name": "breakdown"})
            prefix = f"/api/v1/experiment/{created.raise_for_status().json()['id']}"
            baseline = http.post(
                f"{prefix}/baseline", content=to_ipc(reference), headers={"content-type": ARROW}
            )
            baseline_id = baseline.raise_for_status().json()["id"]
            body = to_ipc(current)
            print(
                "check  upload+reduce+store  queue+worker  wake+answer  report  total (s)"
                "  | CPU s: client backend worker db  sum  | load  | db: kernel CPU s, MB written"
            )
            for i in range(args.checks):
                parts = {
                    "backend": [backend.process.pid],
                    "worker": [worker.process.pid, *descendants(worker.process.pid)],
                    "db": [mongo.process.pid],
                }
                before = cpu_by_part(parts)
                db_system = system_seconds(mongo.process.pid)
                db_written = written_mb(mongo.process.pid)
                start = time.time()
                answer = http.post(
                    f"{prefix}/check",
                    content=body,
                    headers={"content-type": ARROW},
                    params={"model": "m", "baseline": baseline_id, "wait": 600},
                )
                if answer.status_code != 200:
                    print(f"check {i}: {answer.status_code} {answer.text[:500]}; logs in {tmp}")
                    continue
                answered = time.time()
                run = answer.json()
                made = datetime.fromisoformat(run["created_at"]).timestamp()
                finished = datetime.fromisoformat(run["finished_at"]).timestamp()
                http.get(f"{prefix}/drift/{run['id']}/report").raise_for_status()
                done = time.time()
                after = cpu_by_part(parts)
                db_system = system_seconds(mongo.process.pid) - db_system
                db_written = written_mb(mongo.process.pid) - db_written
                cpu = [after[k] - before[k] for k in after]
                print(
                    f"{i:5d}  {made - start:19.2f}  {finished - made:12.2f}  "
                    f"{answered - finished:11.2f}  {done - answered:6.2f}  {done - start:5.2f}"
                    f"  | {' '.join(f'{c:6.2f}' for c in cpu)}  {sum(cpu):5.2f}"
                    f"  | {os.getloadavg()[0]:.1f}  | {db_system:6.2f}  {db_written:5.0f}"
                )
        finally:
            worker.stop()
            backend.stop()
            mongo.stop()


if __name__ == "__main__":
    main()
