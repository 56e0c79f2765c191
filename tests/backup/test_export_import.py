"""``drift-monitor-server export`` then ``import`` into an empty database: a database
populated through the API (experiments, runs, a baseline, a check with its report, GridFS
files) comes back with nothing lost, and a backend on the copy serves it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from drift_backend.backup import FORMAT, VERSION
from drift_backend.devstack.services import ManagedProcess
from pymongo import AsyncMongoClient

from tests.checks.test_check_api import ARROW, arrow_bytes, frame
from tests.conftest import Api, in_process_backend
from tests.support.jwt_issuer import JWTIssuer

SERVER = str(Path(sys.executable).parent / "drift-monitor-server")


def cli(mongodb: ManagedProcess, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, configured the way the backup service is: DRIFT_* variables."""
    env = {
        **os.environ,
        "DRIFT_MONGODB_URL": mongodb.url,
        "DRIFT_MONGODB_DATABASE": database,
        "DRIFT_SECRETS_DIR": "/nonexistent",
    }
    return subprocess.run(
        [SERVER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


async def populate(api: Api) -> dict[str, Any]:
    await api.register("alice")
    await api.register("bob")
    exp = await api.experiment("alice", public=False)
    base = f"/api/v1/experiment/{exp['id']}"
    run = await api.request(
        "POST", f"{base}/drift", "alice", json={"model": "m1", "tags": ["nightly"]}
    )
    assert run.status_code == 201, run.text
    baseline = await api.request(
        "POST",
        f"{base}/baseline",
        "alice",
        params={"name": "train", "model": "m1"},
        json={"columns": frame(1, 3000)},
    )
    assert baseline.status_code == 201, baseline.text
    check = await api.request(
        "POST",
        f"{base}/check",
        "alice",
        params={"model": "m1", "wait": 60},
        content=arrow_bytes(frame(2, 2000, shift=0.6)),
        headers={"content-type": ARROW},
    )
    assert check.status_code == 200, check.text
    assert check.json()["job_status"] == "Completed"
    return {
        "experiment": exp,
        "run": run.json(),
        "check": check.json(),
        "baseline": baseline.json(),
    }


async def snapshot(url: str, database: str) -> dict[str, Any]:
    """Every document of every collection, and each collection's index keys."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, tz_aware=True, uuidRepresentation="standard"
    )
    db = client[database]
    try:
        found: dict[str, Any] = {}
        for name in sorted(await db.list_collection_names()):
            documents = await db[name].find({}, sort=[("_id", 1)]).to_list()
            indexes = sorted(
                [
                    (index["name"], json.dumps(dict(index["key"])), bool(index.get("unique")))
                    async for index in await db[name].list_indexes()
                ]
            )
            found[name] = {"documents": documents, "indexes": indexes}
        return found
    finally:
        await client.close()


async def test_export_import_round_trip_loses_nothing(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess, tmp_path: Path
) -> None:
    async with in_process_backend(
        mongodb, issuer, oidc_provider, embedded_worker=True, keep_batches=True
    ) as source:
        made = await populate(source)
        source_db = source.settings.mongodb_database
        # A dashboard session holds a user's tokens: never written to a backup.
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.url)
        await client[source_db]["dashboard_sessions"].insert_one({"tokens": {"a": "secret"}})
        await client.close()
        before = await snapshot(mongodb.url, source_db)
        del before["dashboard_sessions"]
        dump = tmp_path / "backup.jsonl.gz"
        exported = cli(mongodb, source_db, "export", str(dump))
        assert exported.returncode == 0, exported.stderr
        assert "one snapshot" in exported.stderr
    # What matters is in there, GridFS included.
    for name in ("users", "experiments", "drifts", "baselines", "jobs", "reports"):
        assert before[name]["documents"], name
    assert any(name.endswith(".chunks") and before[name]["documents"] for name in before)

    with gzip.open(dump, "rt") as lines:
        header = json.loads(next(lines))
        *_, footer = (json.loads(line) for line in lines)
    assert header["format"] == FORMAT
    assert header["version"] == VERSION
    assert header["snapshot"] is True
    assert [c["name"] for c in header["collections"]] == sorted(before)
    assert footer == {"end": True, "counts": {n: len(c["documents"]) for n, c in before.items()}}

    target_db = f"test_{uuid.uuid4().hex[:12]}"
    imported = cli(mongodb, target_db, "import", str(dump))
    assert imported.returncode == 0, imported.stderr
    after = await snapshot(mongodb.url, target_db)
    assert sorted(after) == sorted(before)
    for name in before:
        assert after[name]["documents"] == before[name]["documents"], name
        assert after[name]["indexes"] == before[name]["indexes"], name

    # A second import would mix two databases: refused, unless asked to replace.
    again = cli(mongodb, target_db, "import", str(dump))
    assert again.returncode != 0
    assert "not empty" in again.stderr
    forced = cli(mongodb, target_db, "import", "--force", str(dump))
    assert forced.returncode == 0, forced.stderr
    assert (await snapshot(mongodb.url, target_db)) == after

    # A backend on the copy serves what the original served.
    async with in_process_backend(
        mongodb, issuer, oidc_provider, mongodb_database=target_db
    ) as copy:
        exp_id = made["experiment"]["id"]
        base = f"/api/v1/experiment/{exp_id}"
        got = await copy.request("GET", base, "alice")
        assert got.status_code == 200
        assert got.json() == made["experiment"] | {"updated_at": got.json()["updated_at"]}
        assert (await copy.request("GET", base, "bob")).status_code in (403, 404)
        runs = await copy.request("POST", f"{base}/drift/search", "alice", json={})
        assert {r["id"] for r in runs.json()} == {made["run"]["id"], made["check"]["id"]}
        report = await copy.request("GET", f"{base}/drift/{made['check']['id']}/report", "alice")
        assert report.status_code == 200, report.text
        assert report.json()["features"]
        profile = await copy.request(
            "GET", f"{base}/baseline/{made['baseline']['id']}/statistics.json", "alice"
        )
        assert profile.status_code == 200, profile.text


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda lines: lines[:-1], "cut short"),
        (lambda lines: ['{"hello": 1}', *lines[1:]], "not a drift-monitor-export file"),
        (lambda lines: [lines[0].replace('"version": 1', '"version": 99'), *lines[1:]], "99"),
        (lambda lines: [*lines[:1], "{not json", *lines[1:]], "line 2"),
    ],
)
async def test_damaged_files_are_refused_with_the_reason(
    mongodb: ManagedProcess, api: Api, tmp_path: Path, damage: Any, message: str
) -> None:
    await api.register("alice")
    await api.experiment("alice")
    dump = tmp_path / "plain.jsonl"
    exported = cli(mongodb, api.settings.mongodb_database, "export", str(dump))
    assert exported.returncode == 0, exported.stderr
    lines = dump.read_text().splitlines()
    (tmp_path / "damaged.jsonl").write_text("\n".join(damage(lines)) + "\n")
    result = cli(
        mongodb, f"test_{uuid.uuid4().hex[:12]}", "import", str(tmp_path / "damaged.jsonl")
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_export_to_a_missing_directory_says_so_and_leaves_nothing(
    mongodb: ManagedProcess, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "backup.jsonl.gz"
    result = cli(mongodb, f"test_{uuid.uuid4().hex[:12]}", "export", str(target))
    assert result.returncode != 0
    assert "export failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.parent.exists()
