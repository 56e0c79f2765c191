"""Write every collection of a database to an export file, one document at a time.

Consistency: on a server with snapshot reads (a MongoDB replica set or sharded cluster,
SecantusDB) all collections are read in one snapshot session, so the file is the database
at a single point in time even while the service keeps writing. MongoDB keeps a snapshot's
history for ``minSnapshotHistoryWindowInSeconds`` (300 s by default): an export that takes
longer fails with ``SnapshotTooOld`` and the server parameter must be raised. A standalone
``mongod`` has no snapshot reads; there the export reads each collection as it is at that
moment (the header says ``"snapshot": false``), so stop the backend and workers first for
an exact copy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import IO, Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConfigurationError, OperationFailure

from drift_backend.backup.fileformat import FORMAT, VERSION, dumps, dumps_plain
from drift_backend.store.database import Database

#: Not exported: the dashboard's sessions hold users' OIDC access and refresh tokens, which
#: do not belong in backup files, and a restored session is of no use (users log in again).
EXCLUDED = frozenset({"dashboard_sessions"})

#: Documents per round trip: large enough to stream quickly, small enough that a batch of
#: GridFS chunks (255 KiB each) stays well under the server's 16 MiB reply.
BATCH_SIZE = 32


@dataclass
class ExportSummary:
    snapshot: bool
    counts: dict[str, int] = field(default_factory=dict)


async def collections_of(db: Database) -> list[dict[str, Any]]:
    """Name, creation options and indexes of every collection (views and ``system.*``
    collections are the server's own and not exported, nor are ``EXCLUDED`` ones)."""
    found = []
    async for info in await db.list_collections(filter={"type": "collection"}):
        name = info["name"]
        if name.startswith("system.") or name in EXCLUDED:
            continue
        indexes = []
        async for index in await db[name].list_indexes():
            spec = {k: v for k, v in index.items() if k not in ("v", "ns")}
            if spec.get("name") != "_id_":
                indexes.append(spec)
        options = {k: v for k, v in info.get("options", {}).items() if k != "uuid"}
        found.append({"name": name, "options": options, "indexes": indexes})
    return sorted(found, key=lambda entry: entry["name"])


async def _snapshot_session(db: Database, probe: str) -> AsyncClientSession | None:
    """A snapshot session when the server has snapshot reads, else None."""
    session = db.client.start_session(snapshot=True)
    try:
        # The first read fixes the snapshot's time; a server without snapshot reads refuses it.
        await db[probe].find_one({}, session=session)
    except (OperationFailure, ConfigurationError):
        await session.end_session()
        return None
    return session


async def export_database(db: Database, out: IO[str], *, snapshot: bool = True) -> ExportSummary:
    """Stream ``db`` into ``out`` (header, documents, footer); never more than one batch of
    documents in memory."""
    collections = await collections_of(db)
    session = None
    if snapshot and collections:
        session = await _snapshot_session(db, collections[0]["name"])
    summary = ExportSummary(snapshot=session is not None)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC),
        "database": db.name,
        "snapshot": summary.snapshot,
        "collections": collections,
    }
    try:
        out.write(dumps_plain(header) + "\n")
        for entry in collections:
            name = entry["name"]
            count = 0
            cursor = db[name].find({}, session=session, batch_size=BATCH_SIZE, sort=[("_id", 1)])
            async for document in cursor:
                out.write(dumps({"collection": name, "document": document}) + "\n")
                count += 1
            summary.counts[name] = count
        out.write(dumps_plain({"end": True, "counts": summary.counts}) + "\n")
    finally:
        if session is not None:
            await session.end_session()
    return summary
