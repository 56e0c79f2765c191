"""Batch parsing: every format gives the same table; limits and malformed data are typed errors."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from drift_backend.baselines.ingest import (
    ARROW_STREAM,
    CSV,
    JSON,
    PARQUET,
    BatchError,
    Limits,
    arrow_stream,
    parse_batch,
)

LIMITS = Limits(max_rows=1000, max_columns=10, max_bytes=1_000_000)
DATA: dict[str, list[object]] = {
    "age": [23, 45, None, 61],
    "income": [1.5, -2.25, 3.0, None],
    "city": ["Paris", None, "Oslo", "Paris"],
}


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def _json(data: dict[str, list[object]]) -> bytes:
    return json.dumps({"columns": data}).encode()


def test_every_format_parses_to_the_same_table() -> None:
    expected = pa.table(DATA)
    bodies = {
        ARROW_STREAM: arrow_stream(expected),
        PARQUET: _parquet(expected),
        CSV: _csv(expected),
        JSON: _json(DATA),
    }
    for media, body in bodies.items():
        table = parse_batch(body, media, LIMITS)
        assert table.equals(expected), media


def test_media_type_parameters_are_ignored() -> None:
    table = parse_batch(_csv(pa.table(DATA)), "text/csv; charset=utf-8", LIMITS)
    assert table.num_rows == 4


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (Limits(max_rows=3, max_columns=10, max_bytes=1_000_000), "max_rows"),
        (Limits(max_rows=1000, max_columns=2, max_bytes=1_000_000), "max_columns"),
        (Limits(max_rows=1000, max_columns=10, max_bytes=10), "max_bytes"),
    ],
)
@pytest.mark.parametrize("media", [ARROW_STREAM, PARQUET, CSV, JSON])
def test_limits_answer_413(limits: Limits, field: str, media: str) -> None:
    table = pa.table(DATA)
    body = {
        ARROW_STREAM: arrow_stream(table),
        PARQUET: _parquet(table),
        CSV: _csv(table),
        JSON: _json(DATA),
    }[media]
    with pytest.raises(BatchError) as err:
        parse_batch(body, media, limits)
    assert (err.value.status, err.value.field) == (413, field)


def test_unknown_media_type_is_415() -> None:
    with pytest.raises(BatchError) as err:
        parse_batch(b"a,b\n1,2\n", "application/xml", LIMITS)
    assert err.value.status == 415


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (b"not arrow", ARROW_STREAM),
        (b"PAR1 broken", PARQUET),
        (b"a,b\n1,2,3\n", CSV),
        (b"{not json", JSON),
        (b'{"rows": []}', JSON),
        (b'{"columns": {"a": [1, 2], "b": [1]}}', JSON),
        (b'{"columns": {"a": [1, "x"]}}', JSON),
        (b'{"columns": {"a": 5}}', JSON),
        (b'{"columns": {"a": [[1], [2]]}}', JSON),
        (b'{"columns": {"": [1]}}', JSON),
        (b'{"columns": {"a": []}}', JSON),
        (b'{"columns": {}}', JSON),
        (b"a,a\n1,2\n", CSV),
        (json.dumps({"columns": {"x" * 257: [1]}}).encode(), JSON),
    ],
)
def test_malformed_data_is_422(body: bytes, media: str) -> None:
    with pytest.raises(BatchError) as err:
        parse_batch(body, media, LIMITS)
    assert err.value.status == 422
    assert err.value.reason


def test_empty_csv_fields_are_missing() -> None:
    table = parse_batch(b"city,n\nParis,1\n,2\n", CSV, LIMITS)
    assert table.column("city").null_count == 1
