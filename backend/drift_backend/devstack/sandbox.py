"""Development-only sandbox: identities for the OIDC provider and demo data, from ``sandbox/``."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from drift_backend.charts import run_counts
from drift_backend.drifts.schemas import SCHEMA_VERSION
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

DEMO_VERSION = 1


def sandbox_dir() -> Path:
    """``sandbox/`` of the source checkout this package runs from, else of the working dir."""
    here = Path(__file__).resolve().parents[3] / "sandbox"
    return here if here.is_dir() else Path.cwd() / "sandbox"


def load_identities(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "users.json").read_text())
    return data


async def load_demo_data(db: Database, directory: Path, issuer: str) -> bool:
    """Insert users, experiments and weeks of drift runs once; False when already loaded."""
    if await db.meta.find_one({"_id": "sandbox", "version": DEMO_VERSION}):
        return False
    identities = load_identities(directory)
    spec = json.loads((directory / "demo.json").read_text())
    rng = random.Random(20261122)  # noqa: S311 (demo data, not security)
    now = utcnow()
    user_ids: dict[str, str] = {}
    for user in identities["users"]:
        existing = await db.users.find_one({"subject": user["sub"], "issuer": issuer})
        if existing is None:
            existing = {
                "_id": str(uuid.uuid4()),
                "subject": user["sub"],
                "issuer": issuer,
                "email": user.get("email"),
                "created_at": now - timedelta(weeks=9),
                "updated_at": now - timedelta(weeks=9),
            }
            await db.users.insert_one(existing)
        user_ids[user["sub"]] = existing["_id"]
    for exp in spec["experiments"]:
        if await db.experiments.find_one({"name": exp["name"]}):
            continue
        created = now - timedelta(weeks=exp["weeks"], hours=1)
        owner = user_ids[exp["owner"]]
        experiment_id = str(uuid.uuid4())
        await db.experiments.insert_one(
            {
                "_id": experiment_id,
                "name": exp["name"],
                "description": exp["description"],
                "public": exp["public"],
                "permissions": [{"entity": owner, "level": "Manage"}, *exp["permissions"]],
                "created_at": created,
                "updated_at": created,
                "created_by": owner,
            }
        )
        runs = _demo_runs(exp, experiment_id, owner, created, now, rng)
        if runs:
            await db.drifts.insert_many(runs)
            await run_counts.rebuild(db, experiment_id)  # demo runs, written as stored
    await db.meta.update_one(
        {"_id": "sandbox"}, {"$set": {"version": DEMO_VERSION, "loaded_at": now}}, upsert=True
    )
    return True


def _demo_runs(
    exp: dict[str, Any],
    experiment_id: str,
    owner: str,
    start: Any,
    end: Any,
    rng: random.Random,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    step = timedelta(days=exp["every_days"])
    moment = start + timedelta(hours=2)
    while moment < end:
        for model in exp["models"]:
            at = moment + timedelta(minutes=rng.randint(0, 600))
            if at >= end:
                continue
            concept = rng.random() < exp["drift_rate"]
            data = rng.random() < exp["drift_rate"]
            failed = rng.random() < 0.05
            run: dict[str, Any] = {
                "_id": str(uuid.uuid4()),
                "experiment_id": experiment_id,
                "schema_version": SCHEMA_VERSION,
                "created_at": at,
                "updated_at": at + timedelta(minutes=3),
                "finished_at": at + timedelta(minutes=3),
                "created_by": owner,
                "model": model,
                "tags": ["demo", rng.choice(["nightly", "weekly", "manual"])],
                "job_status": "Failed" if failed else "Completed",
                "parameters": {},
                "concept_drift": None,
                "data_drift": None,
                "error": None,
                "drift_detected": False,
            }
            if failed:
                run["error"] = {"type": "ConnectionError", "message": "feature store unreachable"}
            else:
                run["concept_drift"] = {
                    "drift": concept,
                    "parameters": {
                        "p_value": round(rng.uniform(0.001, 0.04), 4)
                        if concept
                        else round(rng.uniform(0.06, 0.9), 4)
                    },
                }
                run["data_drift"] = {
                    "drift": data,
                    "parameters": {
                        "drifted_features": rng.randint(1, 6) if data else 0,
                        "share": round(rng.uniform(0.3, 0.7), 2) if data else 0.0,
                    },
                }
                run["drift_detected"] = concept or data
            runs.append(run)
        moment += step
    return runs
