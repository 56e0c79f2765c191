"""Load an export file into an empty database, then recreate the exported indexes.

Indexes are built after the documents (faster than maintaining them on every insert, and
the data already satisfied them where it came from). A non-empty target is refused unless
``force``: then every collection the file holds is dropped and replaced, and collections it
does not hold are left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pymongo.errors import CollectionInvalid, PyMongoError

from drift_backend.backup.fileformat import FORMAT, VERSION, BackupError, loads
from drift_backend.store.database import Database, Document

#: Documents or bytes per insert, whichever comes first: well under the 48 MB message limit.
INSERT_DOCUMENTS = 500
INSERT_BYTES = 8 * 1024 * 1024


@dataclass
class ImportSummary:
    counts: dict[str, int] = field(default_factory=dict)
    indexes: int = 0


def _records(source: IO[str]) -> Iterator[tuple[int, int, Any]]:
    """(line number, line length, record) of every non-blank line."""
    for number, line in enumerate(source, start=1):
        if line.strip():
            try:
                yield number, len(line), loads(line)
            except ValueError as error:
                raise BackupError(f"line {number}: not valid Extended JSON ({error})") from None


def _check_header(header: Any) -> list[dict[str, Any]]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"not a {FORMAT} file (the first line is no export header)")
    if header.get("version") != VERSION:
        raise BackupError(
            f"export format version {header.get('version')!r} is not supported "
            f"(this server reads version {VERSION})"
        )
    collections: list[dict[str, Any]] = header["collections"]
    return collections


async def _non_empty(db: Database) -> list[str]:
    names = [n for n in await db.list_collection_names() if not n.startswith("system.")]
    return [n for n in sorted(names) if await db[n].find_one({}, projection={"_id": 1})]


async def import_database(db: Database, source: IO[str], *, force: bool = False) -> ImportSummary:
    records = _records(source)
    first = next(records, None)
    if first is None:
        raise BackupError("the export file is empty")
    collections = _check_header(first[2])
    filled = await _non_empty(db)
    if filled and not force:
        raise BackupError(
            f"database {db.name!r} is not empty ({', '.join(filled)}); "
            "import only into an empty database, or pass --force to replace these collections"
        )
    known = {entry["name"] for entry in collections}
    for entry in collections:
        await db.drop_collection(entry["name"])
        # Created meanwhile by a running service: fine, the documents go in all the same.
        with contextlib.suppress(CollectionInvalid):
            await db.create_collection(entry["name"], **entry.get("options", {}))

    summary = ImportSummary(counts=dict.fromkeys(known, 0))
    pending: dict[str, list[Document]] = {}
    pending_bytes = 0
    footer: dict[str, Any] | None = None

    async def flush() -> None:
        nonlocal pending_bytes
        for name, documents in pending.items():
            if documents:
                await db[name].insert_many(documents, ordered=True)
                summary.counts[name] += len(documents)
        pending.clear()
        pending_bytes = 0

    for number, size, record in records:
        if footer is not None:
            raise BackupError(f"line {number}: data after the end of the export")
        if isinstance(record, dict) and record.get("end") is True:
            footer = record
            continue
        if not isinstance(record, dict) or record.get("collection") not in known:
            raise BackupError(f"line {number}: not a document of an exported collection")
        batch = pending.setdefault(record["collection"], [])
        batch.append(record["document"])
        pending_bytes += size  # the JSON line's length: close enough to its BSON size
        if len(batch) >= INSERT_DOCUMENTS or pending_bytes >= INSERT_BYTES:
            await flush()
    await flush()

    if footer is None:
        raise BackupError("the export file ends early (no end line): it was cut short")
    expected = footer.get("counts", {})
    wrong = {n: (c, expected.get(n)) for n, c in summary.counts.items() if expected.get(n) != c}
    if wrong:
        raise BackupError(f"document counts differ from the export's end line: {wrong}")

    for entry in collections:
        if entry["indexes"]:
            try:
                await db.command({"createIndexes": entry["name"], "indexes": entry["indexes"]})
            except PyMongoError as error:
                raise BackupError(f"indexes of {entry['name']}: {error}") from None
            summary.indexes += len(entry["indexes"])
    return summary
