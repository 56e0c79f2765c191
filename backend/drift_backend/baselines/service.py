"""Baselines: store, list, find, delete, the one a check uses, and profiles by baseline id."""

from __future__ import annotations

import uuid
from typing import Any

from cachetools import LRUCache

from drift_backend.baselines import repository
from drift_backend.baselines.model import FeatureProfile, Profile
from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

#: Profiles an API process keeps parsed (each a few MB in memory at most).
CACHED_PROFILES = 32


def baseline_to_api(doc: dict[str, Any], profile: Profile | None = None) -> dict[str, Any]:
    """A stored baseline as the API shows it; with its ``profile``, its features too."""
    out: dict[str, Any] = {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "name": doc.get("name"),
        "model": doc.get("model"),
        "source": doc["profile"].get("source", "data"),
        "row_count": doc["profile"]["row_count"],
        "created_at": doc["created_at"],
        "created_by": doc.get("created_by"),
    }
    if profile is not None:
        out["features"] = [feature_summary(f) for f in profile.features]
    return out


def feature_summary(feature: FeatureProfile) -> dict[str, Any]:
    numeric, categorical = feature.numeric, feature.categorical
    return {
        "name": feature.name,
        "kind": feature.kind,
        "inferred_type": feature.inferred_type,
        "completeness": feature.completeness,
        "count": feature.count,
        "missing": feature.missing,
        "distinct_count": feature.distinct_count,
        "min": numeric.min if numeric else None,
        "max": numeric.max if numeric else None,
        "mean": numeric.mean if numeric else None,
        "std": numeric.std if numeric else None,
        "categories": len(categorical.values) if categorical else None,
    }


class ProfileCache:
    """Parsed profiles by baseline id, most recently used kept.

    A baseline never changes once stored, so a cached profile never goes stale. Callers still
    look the baseline up (a deleted one must not be served); what the cache saves is moving and
    parsing its profile on every check.
    """

    def __init__(self, size: int = CACHED_PROFILES) -> None:
        self._profiles: LRUCache[str, Profile] = LRUCache(maxsize=size)

    def get(self, baseline_id: str) -> Profile | None:
        return self._profiles.get(baseline_id)

    def put(self, baseline_id: str, profile: Profile) -> Profile:
        self._profiles[baseline_id] = profile
        return profile

    def __len__(self) -> int:
        return len(self._profiles)

    async def load(self, db: Database, baseline_id: str) -> Profile | None:
        """The profile of a baseline the caller has just found; None if it is gone since."""
        cached = self.get(baseline_id)
        if cached is not None:
            return cached
        profile = await repository.load_profile(db, baseline_id)
        return None if profile is None else self.put(baseline_id, profile)


async def store_baseline(
    db: Database,
    experiment_id: str,
    profile: Profile,
    *,
    name: str | None,
    model: str | None,
    created_by: str | None,
) -> dict[str, Any]:
    doc = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "name": name,
        "model": model,
        "created_at": utcnow(),
        "created_by": created_by,
    }
    await repository.insert(db, doc, profile)
    return {**doc, "profile": {"source": profile.source, "row_count": profile.row_count}}


async def list_baselines(db: Database, experiment_id: str) -> list[dict[str, Any]]:
    """The experiment's baselines, newest first, without their profiles' bulk."""
    return await repository.list_for(db, experiment_id)


def _not_found(experiment_id: str, baseline_id: str) -> NotFound:
    return NotFound(f"baseline {baseline_id} not found in experiment {experiment_id}")


async def get_baseline(
    db: Database, experiment_id: str, baseline_id: str, projection: dict[str, int] | None = None
) -> dict[str, Any]:
    doc = await repository.find(
        db, experiment_id, baseline_id, repository.LISTED if projection is None else projection
    )
    if doc is None:
        raise _not_found(experiment_id, baseline_id)
    return doc


async def get_profile(
    db: Database, cache: ProfileCache, experiment_id: str, baseline_id: str
) -> Profile:
    """A stored baseline's profile, through the cache; 404 when the baseline is gone."""
    await get_baseline(db, experiment_id, baseline_id, {"_id": 1})
    profile = await cache.load(db, baseline_id)
    if profile is None:
        raise _not_found(experiment_id, baseline_id)
    return profile


async def delete_baseline(db: Database, experiment_id: str, baseline_id: str) -> None:
    if not await repository.remove(db, experiment_id, baseline_id):
        raise _not_found(experiment_id, baseline_id)
    await db.experiments.update_one(
        {"_id": experiment_id}, {"$pull": {"default_baselines": {"baseline_id": baseline_id}}}
    )


async def delete_experiment_baselines(db: Database, experiment_id: str) -> None:
    """Every baseline of an experiment (the experiment is being deleted)."""
    await repository.remove_for_experiment(db, experiment_id)


async def baseline_exists(db: Database, experiment_id: str, baseline_id: str) -> bool:
    return await repository.find(db, experiment_id, baseline_id, {"_id": 1}) is not None


async def resolve_baseline(
    db: Database,
    experiment: dict[str, Any],
    baseline_id: str | None,
    model: str,
    projection: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The named baseline; else the experiment's default for ``model``; else the newest one
    for ``model``; else the experiment's newest."""
    experiment_id = experiment["_id"]
    if baseline_id:
        return await get_baseline(db, experiment_id, baseline_id, projection)
    for entry in experiment.get("default_baselines", []):
        if entry.get("model") == model:
            return await get_baseline(db, experiment_id, entry["baseline_id"], projection)
    for wanted in (model, None):
        doc = await repository.find_newest(db, experiment_id, wanted, projection)
        if doc is not None:
            return doc
    raise ValidationFailed(
        "baseline", "the experiment has no baseline yet: POST one to .../baseline first"
    )
