"""Float values by feature, packed for storage: a baseline's kept reference values and a
reduced check batch's current values (each feature's run sorted, in both).

Stored bytes cost twice over on the way (the database writes a document into its collection
and again into its oplog and journal, and the worker reads it back), and 10,000 values of
1,000 features are 80 MB as plain float64. Packed, the same values are about a third
smaller on random doubles and much smaller on real columns (fewer distinct values, fewer
significant digits), losslessly (bit for bit, NaN payloads and signed zeros included):

1. each float's bits mapped to an unsigned integer in the order of the floats (the sign
   bit flipped for positives, every bit for negatives), so a sorted run is non-decreasing;
2. the differences of consecutive integers (modulo 2**64), small within a sorted run;
3. their bytes regrouped by significance (the "byte shuffle" of Blosc and HDF5), so the
   mostly-zero high bytes of the differences lie together;
4. Zstandard at level 1 (pyarrow's codec), in blocks of ``BLOCK`` values.

Layout of a part: ``MAGIC``, the lengths (8 bytes each, little-endian) of the two pieces
that follow: an Arrow IPC stream of one row per feature (at least ``name`` and ``size``, the
count of its values; callers add columns and schema metadata), and the packed values of
those features in that order. Parts concatenate: a writer may store features part by part
as it produces them (and the metadata in a last part of none), and :func:`unpack` reads
them all as one. What was stored before (a plain Arrow IPC stream, the values in a list
column ``values``) reads as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from drift_backend.baselines.ingest import arrow_stream
from drift_backend.baselines.model import FloatArray
from drift_backend.baselines.parallel import map_columns

MAGIC = b"DMPACK1\n"
_LENGTHS = struct.Struct("<QQ")
_CODEC = pa.Codec("zstd", compression_level=1)
_SIGN = np.uint64(1 << 63)
_TOP = np.uint64(63)
_LENGTH = struct.Struct("<Q")
#: Values packed at a time: 8 MB of float64, so a part's temporaries stay that size.
BLOCK = 1 << 20
#: malloc's, which the processes keep warm (``memory.py``), not Arrow's own pool.
_POOL = pa.system_memory_pool()

UintArray = np.ndarray[tuple[int], np.dtype[np.uint64]]


def is_packed(data: bytes | bytearray | memoryview) -> bool:
    return bytes(data[: len(MAGIC)]) == MAGIC


def _pack(flat: FloatArray) -> bytes:
    """Blocks of ``BLOCK`` values, each its compressed length (8 bytes) and its frame; the
    differences run on across blocks."""
    bits = np.ascontiguousarray(flat, dtype=np.float64).view(np.uint64)
    frames: list[bytes] = []
    previous = np.uint64(0)
    for start in range(0, bits.size, BLOCK):
        block = bits[start : start + BLOCK]
        ordered = block ^ (np.negative(block >> _TOP) | _SIGN)  # negatives: every bit flipped
        steps = np.empty_like(ordered)  # wrap modulo 2**64: exact both ways
        steps[0] = ordered[0] - previous
        np.subtract(ordered[1:], ordered[:-1], out=steps[1:])
        previous = ordered[-1]
        planes = np.ascontiguousarray(steps.view(np.uint8).reshape(-1, 8).T)
        frame = bytes(_CODEC.compress(planes, asbytes=True, memory_pool=_POOL))
        frames += [_LENGTH.pack(len(frame)), frame]
    return b"".join(frames)


def _unpack(data: memoryview, count: int) -> FloatArray:
    """The ``count`` values of :func:`_pack`, block by block into one array: the temporaries
    are a block's, reused, not the whole part's (fresh memory is what costs most here)."""
    values: UintArray = np.empty(count, dtype=np.uint64)
    previous = np.uint64(0)
    at = 0
    for start in range(0, count, BLOCK):
        size = min(BLOCK, count - start)
        (length,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        raw = _CODEC.decompress(
            data[at : at + length], decompressed_size=size * 8, asbytes=False, memory_pool=_POOL
        )
        at += length
        block = values[start : start + size]
        block.view(np.uint8).reshape(size, 8)[:] = np.frombuffer(raw, np.uint8).reshape(8, size).T
        np.cumsum(block, out=block)
        block += previous
        previous = block[-1]
        flip = block >> _TOP
        flip -= np.uint64(1)  # positives: the sign bit back; negatives: every bit
        flip |= _SIGN
        block ^= flip
    return values.view(np.float64)


def pack(
    values: Mapping[str, FloatArray],
    columns: Mapping[str, pa.Array] | None = None,
    metadata: Mapping[bytes, bytes] | None = None,
) -> bytes:
    """One part: the features' values packed, with ``columns`` (one row per feature, in
    the order of ``values``) and the schema ``metadata`` beside them."""
    names = list(values)
    sizes = np.fromiter((values[n].size for n in names), dtype=np.int64, count=len(names))
    flat = np.concatenate([values[n] for n in names]) if names else np.zeros(0)
    table = pa.table(
        {"name": pa.array(names, pa.string()), "size": pa.array(sizes), **(columns or {})}
    )
    if metadata:
        table = table.replace_schema_metadata(dict(metadata))
    ipc, blob = arrow_stream(table), _pack(flat)
    return b"".join((MAGIC, _LENGTHS.pack(len(ipc), len(blob)), ipc, blob))


def unpack(data: bytes | bytearray) -> tuple[pa.Table, dict[str, FloatArray]]:
    """The features of every part written by :func:`pack` (one table, the parts' schema
    metadata merged) and each feature's values; or those of a stream stored before packing
    (its ``values`` list column)."""
    if not is_packed(data):
        table = pa.ipc.open_stream(data).read_all()
        lists = table.column("values").combine_chunks()
        flat = lists.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        offsets = lists.offsets.to_numpy()
        names = table.column("name").to_pylist()
        return table, {name: flat[offsets[i] : offsets[i + 1]] for i, name in enumerate(names)}
    view = memoryview(data)
    tables: list[pa.Table] = []
    packed: list[tuple[memoryview, int]] = []
    at = 0
    while at < len(view):
        if not is_packed(view[at:]):
            raise ValueError(f"packed values: no part starts at byte {at}")
        ipc_length, blob_length = _LENGTHS.unpack_from(view, at + len(MAGIC))
        at += len(MAGIC) + _LENGTHS.size
        tables.append(pa.ipc.open_stream(view[at : at + ipc_length]).read_all())
        at += ipc_length
        packed.append(
            (view[at : at + blob_length], int(tables[-1].column("size").to_numpy().sum()))
        )
        at += blob_length
    # The parts on the column threads: decompressing and numpy's passes release the GIL.
    flats = map_columns(lambda part: _unpack(*part), packed)
    metadata: dict[bytes, bytes] = {}
    values: dict[str, FloatArray] = {}
    for table, flat in zip(tables, flats, strict=True):
        offsets = np.concatenate(([0], np.cumsum(table.column("size").to_numpy())))
        for i, name in enumerate(table.column("name").to_pylist()):
            values[name] = flat[offsets[i] : offsets[i + 1]]
        metadata.update(table.schema.metadata or {})
    merged = pa.concat_tables([table.replace_schema_metadata(None) for table in tables])
    return merged.replace_schema_metadata(metadata), values
