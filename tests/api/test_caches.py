"""The per-process caches are bounded: past their size the least recently used entry goes."""

from __future__ import annotations

from drift_backend.store.database import Database
from drift_backend.users.cache import UserCache


async def test_user_cache_keeps_at_most_its_size(db: Database) -> None:
    for sub in ("a", "b", "c"):
        await db.users.insert_one({"_id": sub, "subject": sub, "issuer": "https://iss"})
    cache = UserCache(ttl=3600, maxsize=2)
    for sub in ("a", "b", "c"):
        user = await cache.get(db, sub, "https://iss")
        assert user is not None
        assert user["_id"] == sub
    assert len(cache) == 2
    # "a" was evicted: a change to it is read from the database, "c" still comes from memory.
    await db.users.update_many({}, {"$set": {"email": "new@example.org"}})
    a = await cache.get(db, "a", "https://iss")
    c = await cache.get(db, "c", "https://iss")
    assert a is not None
    assert c is not None
    assert a.get("email") == "new@example.org"
    assert c.get("email") is None


async def test_user_cache_with_no_ttl_caches_nothing(db: Database) -> None:
    await db.users.insert_one({"_id": "a", "subject": "a", "issuer": "https://iss"})
    cache = UserCache(ttl=0)
    assert await cache.get(db, "a", "https://iss") is not None
    assert len(cache) == 0
