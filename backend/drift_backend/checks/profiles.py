"""Baseline profiles kept in memory by baseline id.

A baseline never changes once stored, so a cached profile never goes stale. Callers still
look the baseline up (a deleted one must not be served); what the cache saves is moving and
parsing its profile (about 1 MB of BSON at 50 features) on every check.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

import bson

from drift_backend.baselines.model import Profile
from drift_backend.store.database import Database

#: Profiles kept per process (each is a few MB in memory at most).
CACHED_PROFILES = 32

V = TypeVar("V")


class LRU(Generic[V]):
    """The ``size`` most recently used values by key (one event loop or process uses it)."""

    def __init__(self, size: int = CACHED_PROFILES) -> None:
        self.size = size
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


class ProfileCache(LRU[Profile]):
    async def load(self, db: Database, baseline_id: str) -> Profile | None:
        """The profile of a baseline the caller has just found; None if it is gone since."""
        cached = self.get(baseline_id)
        if cached is not None:
            return cached
        doc = await db.baselines.find_one({"_id": baseline_id}, {"profile": 1})
        return None if doc is None else self.put(baseline_id, Profile.from_document(doc["profile"]))


def profile_from_bson(raw: bytes) -> Profile:
    """A profile from a raw baseline document (what the worker hands its pool processes)."""
    return Profile.from_document(bson.decode(raw)["profile"])
