"""Sorted reference values by feature, stored as one Arrow IPC stream beside the profile.

Binary, not JSON: ten thousand values of a thousand features are 80 MB here against several
times that as JSON numbers, and reading them back is a zero-copy view per feature.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from drift_backend.baselines.ingest import arrow_stream
from drift_backend.baselines.model import FloatArray


def encode_values(values: Mapping[str, FloatArray]) -> bytes:
    names = list(values)
    sizes = np.fromiter((values[n].size for n in names), dtype=np.int64, count=len(names))
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    flat = np.concatenate([values[n] for n in names]) if names else np.zeros(0)
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float64()))
    return arrow_stream(pa.table({"name": pa.array(names, pa.string()), "values": lists}))


def decode_values(data: bytes) -> dict[str, FloatArray]:
    table = pa.ipc.open_stream(data).read_all()
    lists = table.column("values").combine_chunks()
    flat = lists.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    offsets = lists.offsets.to_numpy()
    return {
        name: flat[offsets[i] : offsets[i + 1]]
        for i, name in enumerate(table.column("name").to_pylist())
    }
