"""Baselines: store, list, find, delete, the one a check uses, and profiles by baseline id."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from cachetools import LRUCache

from drift_backend.baselines import repository
from drift_backend.baselines.model import FeatureProfile, Profile
from drift_backend.errors import NotFound, ValidationFailed
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database

#: Parsed profiles an API process keeps, in bytes of their stored form (parsed, a profile
#: takes a few times that).
CACHED_PROFILE_BYTES = 128 * 1024 * 1024


def baseline_to_api(doc: dict[str, Any], profile: Profile | None = None) -> dict[str, Any]:
    """A stored baseline as the API shows it; with its ``profile``, its features too."""
    out: dict[str, Any] = {
        "id": doc["_id"],
        "experiment_id": doc["experiment_id"],
        "name": doc.get("name"),
        "model": doc.get("model"),
        "source": doc.get("source", "data"),
        "row_count": doc["row_count"],
        "feature_count": doc.get("feature_count"),
        "stored_bytes": doc.get("stored_bytes"),
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
        "exact_values": bool(numeric and numeric.exact_values),
    }


class ProfileCache:
    """Parsed profiles by baseline id, most recently used kept.

    A baseline never changes once stored, so a cached profile never goes stale. Callers still
    look the baseline up (a deleted one must not be served); what the cache saves is moving and
    parsing its profile on every check.
    """

    def __init__(self, max_bytes: int = CACHED_PROFILE_BYTES) -> None:
        self._profiles: LRUCache[str, tuple[Profile, int]] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: max(1, entry[1])
        )

    def get(self, baseline_id: str) -> Profile | None:
        entry = self._profiles.get(baseline_id)
        return None if entry is None else entry[0]

    def put(self, baseline_id: str, profile: Profile, size: int = 1) -> Profile:
        """Keep ``profile`` (``size``: its stored bytes), without reference values: the
        API process never tests, the worker loads those itself."""
        kept = profile.with_values({}) if profile.all_values else profile
        with contextlib.suppress(ValueError):  # larger than the whole cache: not kept
            self._profiles[baseline_id] = (kept, size)
        return kept

    def __len__(self) -> int:
        return len(self._profiles)

    async def load(self, db: Database, baseline_id: str) -> Profile | None:
        """The profile of a baseline the caller has just found; None if it is gone since."""
        cached = self.get(baseline_id)
        if cached is not None:
            return cached
        loaded = await repository.load_profile(db, baseline_id)
        return None if loaded is None else self.put(baseline_id, *loaded)


async def store_baseline(
    db: Database,
    experiment_id: str,
    profile: Profile,
    *,
    name: str | None,
    model: str | None,
    created_by: str | None,
) -> dict[str, Any]:
    """Store a new baseline; the stored document (``stored_bytes``: the profile's size)."""
    stored = await asyncio.to_thread(repository.encode, profile)
    doc = {
        "_id": str(uuid.uuid4()),
        "experiment_id": experiment_id,
        "name": name,
        "model": model,
        "created_at": utcnow(),
        "created_by": created_by,
        "source": profile.source,
        "row_count": profile.row_count,
        "feature_count": len(profile.features),
    }
    return await repository.insert(db, doc, stored)


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


async def get_with_profile(
    db: Database, cache: ProfileCache, experiment_id: str, baseline_id: str
) -> tuple[dict[str, Any], Profile]:
    """A stored baseline's document and its profile, through the cache; 404 when the
    baseline is gone."""
    doc = await get_baseline(db, experiment_id, baseline_id)
    profile = await cache.load(db, baseline_id)
    if profile is None:
        raise _not_found(experiment_id, baseline_id)
    return doc, profile


async def get_profile(
    db: Database, cache: ProfileCache, experiment_id: str, baseline_id: str
) -> Profile:
    """A stored baseline's profile, through the cache; 404 when the baseline is gone."""
    return (await get_with_profile(db, cache, experiment_id, baseline_id))[1]


async def delete_baseline(db: Database, experiment_id: str, baseline_id: str) -> None:
    """The baseline and its stored profile (the experiment's default for it is the caller's
    to forget: :func:`drift_backend.experiments.service.forget_default_baseline`)."""
    if not await repository.remove(db, experiment_id, baseline_id):
        raise _not_found(experiment_id, baseline_id)


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
