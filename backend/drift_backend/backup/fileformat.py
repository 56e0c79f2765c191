"""The export file: JSON lines, optionally gzip-compressed.

1. A header (relaxed Extended JSON, so plain JSON numbers): ``{"format": "drift-monitor-export", "version": 1, "created_at", "database",
   "snapshot", "collections": [{"name", "options", "indexes"}]}``.
2. One line per document: ``{"collection": name, "document": {...}}``. Documents are
   MongoDB Extended JSON v2 in canonical mode, so every BSON type comes back as it was
   (int32/int64/double, UTC datetimes, ObjectIds, UUIDs and GridFS chunks as ``$binary``).
3. A footer: ``{"end": true, "counts": {name: documents}}``. A file without it was cut
   short (a full disk, a killed export) and is refused.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from bson import json_util
from bson.binary import UuidRepresentation
from bson.json_util import JSONMode, JSONOptions

FORMAT = "drift-monitor-export"
VERSION = 1

#: Canonical mode keeps the exact BSON type of every value (relaxed mode would turn an int64
#: that fits in 32 bits into an int32 on the way back).
JSON_OPTIONS = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    tz_aware=True,
    uuid_representation=UuidRepresentation.STANDARD,
)

GZIP_MAGIC = b"\x1f\x8b"


class BackupError(Exception):
    """An export or import that cannot go on; the message says why."""


#: The header and the footer are for people and tools too: plain numbers and ISO dates.
HEADER_OPTIONS = JSONOptions(
    json_mode=JSONMode.RELAXED,
    tz_aware=True,
    uuid_representation=UuidRepresentation.STANDARD,
)


def dumps(value: Any) -> str:
    return json_util.dumps(value, json_options=JSON_OPTIONS)


def dumps_plain(value: Any) -> str:
    return json_util.dumps(value, json_options=HEADER_OPTIONS)


def loads(line: str) -> Any:
    return json_util.loads(line, json_options=JSON_OPTIONS)


def open_for_writing(path: Path, *, compress: bool) -> IO[str]:
    if compress:
        # mtime=0: the same data gives the same bytes, so two backups can be compared.
        raw = cast(BinaryIO, gzip.GzipFile(filename=path, mode="wb", mtime=0))
    else:
        raw = path.open("wb")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")


def open_for_reading(path: Path) -> IO[str]:
    """A text stream of ``path``, decompressed when it starts with the gzip magic bytes."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    # The caller closes the returned stream (and with it the file).
    opened = gzip.open(path, "rb") if compressed else path.open("rb")  # noqa: SIM115
    raw = cast(BinaryIO, opened)
    return io.TextIOWrapper(raw, encoding="utf-8")
