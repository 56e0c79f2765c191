"""Server-side sessions on a real SecantusDB, and token refresh against the real development
OIDC provider."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.devstack.services import DEV_CLIENT_ID, ManagedProcess, fetch_token
from drift_dashboard.oidc import TokenKeeper, make_oauth, stored_tokens
from drift_dashboard.sessions import COLLECTION, Session, SessionStore
from drift_dashboard.settings import load_settings
from pymongo import AsyncMongoClient


@pytest.fixture
async def store(mongodb: ManagedProcess) -> AsyncIterator[SessionStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb.url, tz_aware=True)
    name = f"dash_{uuid.uuid4().hex[:10]}"
    made = SessionStore(client[name][COLLECTION], timedelta(hours=1))
    await made.ensure_indexes()
    yield made
    await client.drop_database(name)
    await client.close()


async def test_ttl_index_on_expiry(store: SessionStore) -> None:
    indexes = await store.collection.index_information()
    ttl = [i for i in indexes.values() if i["key"] == [("expires_at", 1)]]
    assert ttl
    assert ttl[0]["expireAfterSeconds"] == 0


async def test_stored_under_a_hash_of_the_cookie_and_loaded_back(store: SessionStore) -> None:
    session = Session()
    session.mark_clean()
    session.data["_state_drift_x"] = {"data": {"nonce": "n"}}
    assert await store.commit(session) is True
    assert session.id is not None
    (doc,) = [d async for d in store.collection.find()]
    assert doc["_id"] == hashlib.sha256(session.id.encode()).hexdigest()
    assert session.id not in str(doc)
    loaded = await store.load(session.id)
    assert loaded is not None
    assert loaded.data == session.data
    assert loaded.csrf_token == session.csrf_token


async def test_an_untouched_anonymous_session_costs_no_write(store: SessionStore) -> None:
    session = Session()
    session.mark_clean()
    assert await store.commit(session) is False
    assert await store.collection.count_documents({}) == 0


async def test_regenerate_replaces_the_id_and_drops_the_old_document(store: SessionStore) -> None:
    session = Session()
    session.data["k"] = "v"
    await store.commit(session)
    old_id, old_csrf = session.id, session.csrf_token
    assert old_id is not None
    session.regenerate()
    session.user = {"sub": "alice"}
    await store.commit(session)
    assert session.id not in (None, old_id)
    assert session.csrf_token != old_csrf
    assert await store.load(old_id) is None
    assert await store.collection.count_documents({}) == 1


async def test_expired_and_unknown_sessions_do_not_load(store: SessionStore) -> None:
    session = Session(user={"sub": "alice"})
    await store.commit(session)
    assert session.id is not None
    await store.collection.update_one(
        {"_id": session.key}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    assert await store.load(session.id) is None
    assert await store.load("not-a-session") is None
    assert await store.load("x" * 500) is None


async def test_end_deletes_the_session(store: SessionStore) -> None:
    session = Session(user={"sub": "alice"}, tokens={"access_token": "t"})
    await store.commit(session)
    session.end()
    assert await store.commit(session) is False
    assert await store.collection.count_documents({}) == 0


async def test_concurrent_requests_refresh_a_due_token_once(
    store: SessionStore, oidc_provider: ManagedProcess
) -> None:
    answer = fetch_token(oidc_provider.url, "alice", client_secret="test-client-secret")
    assert answer.get("refresh_token")
    tokens = stored_tokens(answer)
    tokens["expires_at"] = int(time.time()) - 5  # already expired
    session = Session(user={"sub": "alice"}, tokens=tokens)
    await store.commit(session)
    settings = load_settings(
        mode="development",
        issuer=oidc_provider.url,
        client_id=DEV_CLIENT_ID,
        client_secret="test-client-secret",
    )
    keeper = TokenKeeper(make_oauth(settings), store, leeway=60)
    # The provider's refresh tokens are single-use: a second refresh would fail and end
    # the session. With the per-session lock, both requests get the one new token.
    first, second = await asyncio.gather(keeper.access_token(session), keeper.access_token(session))
    assert first is not None
    assert first == second
    assert first != answer["access_token"]
    stored = await store.load_tokens(session)
    assert stored is not None
    assert stored["access_token"] == first
    assert stored.get("id_token")  # kept even when the refresh answer has none
    assert stored["expires_at"] > time.time()


async def test_an_unrenewable_expired_token_ends_the_session(
    store: SessionStore, oidc_provider: ManagedProcess
) -> None:
    session = Session(
        user={"sub": "alice"},
        tokens={"access_token": "old", "expires_at": int(time.time()) - 5},
    )
    await store.commit(session)
    settings = load_settings(mode="development", issuer=oidc_provider.url)
    keeper = TokenKeeper(make_oauth(settings), store, leeway=60)
    assert await keeper.access_token(session) is None
    assert session.ended
