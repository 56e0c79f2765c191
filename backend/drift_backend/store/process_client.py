"""The database as a statistics process sees it: one synchronous client per process.

The worker's statistics processes read a check's stored batch themselves, so tens of
megabytes are not read by the worker, pickled and sent through a pipe to them (each copy
of an 80 MB batch costs CPU twice). :func:`configure` runs once as the process starts (the
pool's initializer); a process never configured (a pool made without it) has no database,
and its callers fall back to being handed the data.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.database import Database as SyncDatabase

from drift_backend.store.database import client_options

#: (url, database name, per-operation bound) from :func:`configure`; the client is made on
#: first use, in the process that uses it (a client must not cross a fork or a pickle).
_settings: tuple[str, str, float] | None = None
_database: SyncDatabase[dict[str, Any]] | None = None


def configure(url: str, name: str, timeout_seconds: float) -> None:
    """Name this process's database (the pool initializer calls it with the worker's)."""
    global _settings, _database
    _settings, _database = (url, name, timeout_seconds), None


def process_database() -> SyncDatabase[dict[str, Any]] | None:
    """This process's database, or None when :func:`configure` never ran here."""
    global _database
    if _settings is None:
        return None
    if _database is None:
        url, name, timeout_seconds = _settings
        client: MongoClient[dict[str, Any]] = MongoClient(url, **client_options(timeout_seconds))
        _database = client[name]
    return _database
