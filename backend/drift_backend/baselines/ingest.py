"""Parse a data batch (request body bytes) into a ``pyarrow.Table``, within explicit limits.

Media types: Arrow IPC stream, Parquet, CSV (``pyarrow.csv``) and JSON
``{"columns": {"name": [values...]}}``. Every failure is a :class:`BatchError` carrying the
HTTP status the API layer answers with: 413 for a limit, 415 for an unknown media type,
422 for malformed data.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
CSV = "text/csv"
JSON = "application/json"
MEDIA_TYPES = (ARROW_STREAM, PARQUET, CSV, JSON)
MAX_NAME_LENGTH = 256


class BatchError(Exception):
    """A rejected batch: ``field`` names the limit or the part at fault."""

    def __init__(self, field: str, reason: str, status: int) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_columns: int
    max_bytes: int


def media_type_of(content_type: str) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return content_type.split(";", 1)[0].strip().lower()


def parse_batch(data: bytes | bytearray, content_type: str, limits: Limits) -> pa.Table:
    """Parse ``data`` sent as ``content_type``; enforce ``limits``; validate column names."""
    media = media_type_of(content_type)
    if media not in MEDIA_TYPES:
        raise BatchError(
            "content-type", f"unsupported media type {media!r}; use one of {MEDIA_TYPES}", 415
        )
    if len(data) > limits.max_bytes:
        raise BatchError("max_bytes", f"body exceeds {limits.max_bytes} bytes", 413)
    try:
        if media == ARROW_STREAM:
            table = _read_arrow(data, limits)
        elif media == PARQUET:
            table = _read_parquet(data, limits)
        elif media == CSV:
            table = pa_csv.read_csv(
                io.BytesIO(data),
                convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
            )
        else:
            table = _read_json(data, limits)
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise BatchError("body", f"malformed {media} data: {exc}", 422) from exc
    check_table(table, limits)
    return table


def check_table(table: pa.Table, limits: Limits) -> None:
    """Limits and column rules shared by every format."""
    if table.num_columns > limits.max_columns:
        raise BatchError("max_columns", f"more than {limits.max_columns} columns", 413)
    if table.num_rows > limits.max_rows:
        raise BatchError("max_rows", f"more than {limits.max_rows} rows", 413)
    if table.num_columns == 0:
        raise BatchError("columns", "the batch has no columns", 422)
    if table.num_rows == 0:
        raise BatchError("rows", "the batch has no rows", 422)
    seen: set[str] = set()
    for name in table.column_names:
        if not isinstance(name, str) or not name:
            raise BatchError("columns", "column names must be non-empty strings", 422)
        if len(name) > MAX_NAME_LENGTH:
            raise BatchError("columns", f"column name longer than {MAX_NAME_LENGTH}", 422)
        if name in seen:
            raise BatchError("columns", f"duplicate column name {name!r}", 422)
        seen.add(name)
    for field in table.schema:
        if not _supported(field.type):
            raise BatchError(field.name, f"unsupported column type {field.type}", 422)


def _supported(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _supported(t.value_type)
    return bool(
        pa.types.is_null(t)
        or pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
    )


def arrow_stream(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream (what ``_read_arrow`` reads back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _read_arrow(data: bytes | bytearray, limits: Limits) -> pa.Table:
    reader = pa.ipc.open_stream(pa.BufferReader(data))
    if len(reader.schema) > limits.max_columns:
        raise BatchError("max_columns", f"more than {limits.max_columns} columns", 413)
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if rows > limits.max_rows:
            raise BatchError("max_rows", f"more than {limits.max_rows} rows", 413)
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)


def _read_parquet(data: bytes | bytearray, limits: Limits) -> pa.Table:
    parquet = pq.ParquetFile(pa.BufferReader(data))
    meta = parquet.metadata
    if meta.num_columns > limits.max_columns:
        raise BatchError("max_columns", f"more than {limits.max_columns} columns", 413)
    if meta.num_rows > limits.max_rows:
        raise BatchError("max_rows", f"more than {limits.max_rows} rows", 413)
    return parquet.read()


def _read_json(data: bytes | bytearray, limits: Limits) -> pa.Table:
    try:
        document: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError("body", f"invalid JSON: {exc}", 422) from exc
    columns = document.get("columns") if isinstance(document, dict) else None
    if not isinstance(columns, dict):
        raise BatchError("columns", 'expected {"columns": {"name": [values...]}}', 422)
    if len(columns) > limits.max_columns:
        raise BatchError("max_columns", f"more than {limits.max_columns} columns", 413)
    lengths = set()
    for name, values in columns.items():
        if not isinstance(values, list):
            raise BatchError(f"columns.{name}", "expected a list of values", 422)
        if len(values) > limits.max_rows:
            raise BatchError("max_rows", f"more than {limits.max_rows} rows", 413)
        lengths.add(len(values))
    if len(lengths) > 1:
        raise BatchError("columns", "columns have different lengths", 422)
    arrays = {}
    for name, values in columns.items():
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise BatchError(f"columns.{name}", f"mixed or invalid values: {exc}", 422) from exc
    return pa.table(arrays)
