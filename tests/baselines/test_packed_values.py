"""Packed float values: bit for bit what went in, smaller than float64, and what was stored
before packing still reads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines import packed_values
from drift_backend.baselines.ingest import arrow_stream

ODD = np.array(
    [np.nan, -np.nan, -0.0, 0.0, np.inf, -np.inf, 5e-324, -5e-324, 1.7976931348623157e308, -1.5]
)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == np.float64 and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", range(3))
def test_values_come_back_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = {
        "sorted": np.sort(rng.normal(size=5_000) * 1e6),
        "unsorted": rng.standard_t(2, size=777),
        "odd": ODD,
        "empty": np.zeros(0),
        "ties": np.sort(rng.integers(-3, 3, 300).astype(float)),
    }
    table, back = packed_values.unpack(packed_values.pack(values))
    assert list(back) == list(values)
    assert table.column("size").to_pylist() == [v.size for v in values.values()]
    for name, kept in values.items():
        assert _same_bits(back[name], kept), name


def test_columns_and_metadata_travel_with_the_values() -> None:
    data = packed_values.pack(
        {"a": np.arange(3.0), "b": np.arange(2.0)},
        {"exact": pa.array([True, False])},
        {b"summary": b"{}"},
    )
    table, _ = packed_values.unpack(bytearray(data))  # as a statistics process reads it
    assert table.column("exact").to_pylist() == [True, False]
    assert (table.schema.metadata or {})[b"summary"] == b"{}"


def test_sorted_doubles_pack_a_third_smaller() -> None:
    rng = np.random.default_rng(1)
    values = {f"x{i}": np.sort(rng.normal(i, 1 + i, 10_000)) for i in range(50)}
    packed = packed_values.pack(values)
    plain = sum(v.nbytes for v in values.values())
    assert len(packed) < 0.72 * plain
    # Rounded values, as real columns mostly are, pack far smaller.
    rounded = {name: np.round(v, 2) for name, v in values.items()}
    assert len(packed_values.pack(rounded)) < 0.3 * plain


def test_values_stored_before_packing_still_read() -> None:
    flat = np.array([1.0, 2.0, 3.0, -4.0])
    lists = pa.LargeListArray.from_arrays(pa.array([0, 3, 4]), pa.array(flat))
    legacy = arrow_stream(pa.table({"name": ["a", "b"], "values": lists}))
    assert not packed_values.is_packed(legacy)
    _, back = packed_values.unpack(legacy)
    assert back["a"].tolist() == [1.0, 2.0, 3.0]
    assert back["b"].tolist() == [-4.0]


def test_parts_written_one_after_another_read_as_one() -> None:
    rng = np.random.default_rng(2)
    values = {f"x{i}": np.sort(rng.normal(size=int(rng.integers(0, 50)))) for i in range(7)}
    names = list(values)
    parts = [
        packed_values.pack(
            {n: values[n] for n in names[i : i + 3]},
            {"exact": pa.array([True] * len(names[i : i + 3]))},
        )
        for i in range(0, len(names), 3)
    ]
    parts.append(packed_values.pack({}, {"exact": pa.array([], pa.bool_())}, {b"last": b"1"}))
    table, back = packed_values.unpack(b"".join(parts))
    assert table.column("name").to_pylist() == names
    assert (table.schema.metadata or {}) == {b"last": b"1"}
    for name in names:
        assert _same_bits(back[name], values[name])
    with pytest.raises(ValueError, match="no part starts"):
        packed_values.unpack(b"".join(parts) + b"junk")


def test_values_across_many_blocks_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed_values, "BLOCK", 7)  # the differences run across blocks
    rng = np.random.default_rng(3)
    values = {"a": np.sort(rng.normal(size=50)), "b": rng.normal(size=23), "odd": ODD}
    _, back = packed_values.unpack(packed_values.pack(values))
    for name, kept in values.items():
        assert _same_bits(back[name], kept), name
