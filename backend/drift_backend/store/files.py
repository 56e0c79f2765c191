"""A GridFS file read whole with the synchronous driver, in a statistics process
(``store.process_client``): its chunks by number, copied once into one buffer (GridFS's own
reader slices and joins them: two more copies of tens of MB). The bucket's owner names its
two collections."""

from __future__ import annotations

from typing import Any

from gridfs.errors import NoFile
from pymongo.collection import Collection

from drift_backend.store.database import transfer_deadline


def read_whole(
    files: Collection[dict[str, Any]], chunks: Collection[dict[str, Any]], file_id: Any
) -> bytearray:
    """The file's bytes. Raises ``NoFile`` when the file or one of its chunks is gone."""
    stored = files.find_one({"_id": file_id}, {"length": 1, "chunkSize": 1})
    if stored is None:
        raise NoFile(f"no file {file_id} in {files.name}")
    length, size = int(stored["length"]), int(stored["chunkSize"])
    data = bytearray(length)
    expected = -(-length // size)  # chunks, rounded up
    found = 0
    with transfer_deadline(files.database, length):
        for chunk in chunks.find({"files_id": file_id}, sort=[("n", 1)]):
            n, part = int(chunk["n"]), chunk["data"]
            start = n * size
            last = n == expected - 1
            if n != found or len(part) != (length - start if last else size):
                raise NoFile(f"{files.name} {file_id}: chunk {n} out of place")
            data[start : start + len(part)] = part
            found += 1
    if found != expected:
        raise NoFile(f"{files.name} {file_id}: {found} of {expected} chunks")
    return data
