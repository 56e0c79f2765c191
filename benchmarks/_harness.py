"""What the API benchmarks share (``api_vs_pymongo.py``, ``dashboard_queries.py``): a
SecantusDB process and the JWT test issuer in a temporary directory, the backend's
environment, the benchmark user and its experiments, the machine line of a report."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the JWT test issuer lives in tests/support

import httpx2  # noqa: E402
from drift_backend.devstack.services import ManagedProcess, free_port, start_mongodb  # noqa: E402

from tests.support.jwt_issuer import JWTIssuer  # noqa: E402


@dataclass
class Stack:
    """A running SecantusDB and token issuer; backends are started by each benchmark."""

    work: Path
    mongo: ManagedProcess
    issuer: JWTIssuer

    def backend_env(self, database: str, **extra: str) -> dict[str, str]:
        """The backend's environment: development mode, this database, this issuer."""
        return {
            **os.environ,
            "DRIFT_MODE": "development",
            "DRIFT_MONGODB_URL": self.mongo.url,
            "DRIFT_MONGODB_DATABASE": database,
            "DRIFT_TRUSTED_ISSUERS": self.issuer.url,
            "DRIFT_ALLOW_INSECURE_ISSUERS": "true",
            "DRIFT_SECRETS_DIR": str(self.work / "no-secrets"),
            **extra,
        }


@contextmanager
def stack() -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp, JWTIssuer() as issuer:
        work = Path(tmp)
        mongo = start_mongodb(free_port(), work / "db", log_path=work / "secantus.log")
        try:
            yield Stack(work, mongo, issuer)
        finally:
            mongo.stop()


async def register(base: str, token: str, names: list[str]) -> tuple[str, list[str]]:
    """Register the token's user and create one experiment per name (a random suffix keeps
    names unique); the user's id and the experiments' ids."""
    async with httpx2.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
    ) as http:
        user = (await http.post("/api/v1/user")).raise_for_status().json()["id"]
        ids = []
        for name in names:
            body = {"name": f"{name}-{uuid.uuid4().hex[:8]}"}
            exp = (await http.post("/api/v1/experiment", json=body)).raise_for_status().json()
            ids.append(exp["id"])
    return user, ids


def machine(packages: tuple[str, ...]) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"
    )
    pkgs = ", ".join(f"{p} {version(p)}" for p in packages)
    return (
        f"nproc {len(os.sched_getaffinity(0))}, CPU {model}, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {pkgs}"
    )
