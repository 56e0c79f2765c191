"""Where the time of one wide check goes: 10,000 rows x 1,000 numerical columns through the
API, split by the run's own timestamps into upload (parse, reduce, store the batch), queue and
worker (load, statistics, report), waking the waiting request, and reading the report.

Run from the repository root: ``uv run python benchmarks/wide_breakdown.py [--checks N]``.
A diagnostic, not a comparison: ``wide_vs_evidently.py`` holds the target. The client's
DataFrame-to-Arrow conversion is not timed here. The backend and a worker with two
statistics processes run as their own processes, as in that benchmark; the first check in
each statistics process also moves the baseline's profile there.
"""

from __future__ import annotations

import argparse
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

from benchmarks._common import ARROW, backend_env, start_worker, to_ipc  # noqa: E402
from tests.support.jwt_issuer import JWTIssuer  # noqa: E402


def frames(columns: int, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({f"c{i}": rng.normal(size=rows) for i in range(columns)})
    shifted = columns // 20  # 5 % drifted by 0.3 sd
    current = pd.DataFrame(
        {f"c{i}": rng.normal(size=rows) + (0.3 if i < shifted else 0.0) for i in range(columns)}
    )
    return reference, current


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=6)
    parser.add_argument("--columns", type=int, default=1000)
    args = parser.parse_args()
    reference, current = frames(args.columns, 10_000)
    tmp = Path(tempfile.mkdtemp())
    mongo = start_mongodb(free_port(), None)
    with JWTIssuer() as issuer:
        issuer.profile("bench", email="bench@example.org")
        env = backend_env(
            mongo.url, issuer.url, tmp, database="breakdown", embedded=False, worker_processes=2
        )
        backend = start_backend(free_port(), env)
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
            print("check  upload+reduce+store  queue+worker  wake+answer  report  total (s)")
            for i in range(args.checks):
                start = time.time()
                answer = http.post(
                    f"{prefix}/check",
                    content=body,
                    headers={"content-type": ARROW},
                    params={"model": "m", "baseline": baseline_id, "wait": 600},
                ).raise_for_status()
                answered = time.time()
                run = answer.json()
                made = datetime.fromisoformat(run["created_at"]).timestamp()
                finished = datetime.fromisoformat(run["finished_at"]).timestamp()
                http.get(f"{prefix}/drift/{run['id']}/report").raise_for_status()
                done = time.time()
                print(
                    f"{i:5d}  {made - start:19.2f}  {finished - made:12.2f}  "
                    f"{answered - finished:11.2f}  {done - answered:6.2f}  {done - start:5.2f}"
                )
        finally:
            worker.stop()
            backend.stop()
            mongo.stop()


if __name__ == "__main__":
    main()
