"""A GridFS file read whole with the synchronous driver, in a statistics process
(``store.process_client``): its chunks by number, copied once into one buffer (GridFS's own
reader slices and joins them: two more copies of tens of MB)."""

from __future__ import annotations

from typing import Any

from gridfs.errors import NoFile
from pymongo.database import Database as SyncDatabase

from drift_backend.store.database import transfer_deadline


def read_whole(db: SyncDatabase[dict[str, Any]], bucket: str, file_id: Any) -> bytearray:
    """The file's bytes. Raises ``NoFile`` when the file or one of its chunks is gone."""
    stored = db[f"{bucket}.files"].find_one({"_id": file_id}, {"length": 1, "chunkSize": 1})
    if stored is None:
        raise NoFile(f"no file {file_id} in {bucket}")
    length, size = int(stored["length"]), int(stored["chunkSize"])
    data = bytearray(length)
    expected = -(-length // size)  # chunks, rounded up
    found = 0
    with transfer_deadline(db, length):
        chunks = db[f"{bucket}.chunks"].find({"files_id": file_id}, sort=[("n", 1)])
        for chunk in chunks:
            n, part = int(chunk["n"]), chunk["data"]
            start = n * size
            last = n == expected - 1
            if n != found or len(part) != (length - start if last else size):
                raise NoFile(f"{bucket} file {file_id}: chunk {n} out of place")
            data[start : start + len(part)] = part
            found += 1
    if found != expected:
        raise NoFile(f"{bucket} file {file_id}: {found} of {expected} chunks")
    return data
