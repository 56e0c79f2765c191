"""Turn user data (DataFrames, Arrow tables, dicts, files) into a request body, streamed.

pyarrow, pandas and numpy are optional (the ``data`` extra) and imported only when needed:
with pyarrow the body is an Arrow IPC stream; without it, a dict of lists goes as JSON
``{"columns": {...}}`` and anything else raises :class:`ConfigurationError`. Files (``.csv``,
``.parquet``, ``.json``) are sent as they are, read in chunks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drift_monitor._exceptions import ConfigurationError, DataError
from drift_monitor._serialize import to_jsonable

__all__ = [
    "ARROW_STREAM",
    "CSV",
    "JSON",
    "PARQUET",
    "SUMMARY",
    "Body",
    "DataLike",
    "Progress",
    "encode",
    "json_body",
    "to_table",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
CSV = "text/csv"
JSON = "application/json"
SUMMARY = "application/vnd.drift-monitor.summary+json"

#: What ``upload_baseline``/``check`` accept: a pandas or polars DataFrame, a pyarrow Table
#: or RecordBatch, a mapping of column name to values, or the path of a CSV/Parquet file.
DataLike = Any
#: ``progress(bytes_sent, total_bytes)``, called once before the first chunk and after each.
Progress = Callable[[int, int], None]

CHUNK_SIZE = 1 << 20
#: Bodies larger than this show a progress line on stderr when it is a terminal.
PROGRESS_THRESHOLD = 8 << 20
SUFFIXES = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET, ".json": JSON}
_DATA_EXTRA = 'install the data extra: pip install "drift-monitor[data]"'


@dataclass(frozen=True)
class Body:
    """A request body held in memory or in a file, sent in chunks."""

    media_type: str
    size: int
    data: bytes | memoryview | None = None
    path: Path | None = None

    def chunks(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The body in chunks of at most ``CHUNK_SIZE`` bytes (fresh for each attempt)."""
        sent = 0
        if progress is not None:
            progress(0, self.size)
        for chunk in self._raw_chunks():
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, self.size)

    def _raw_chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            view = memoryview(self.data)
            for start in range(0, len(view), CHUNK_SIZE):
                yield bytes(view[start : start + CHUNK_SIZE])
            return
        assert self.path is not None
        with self.path.open("rb") as file:
            while chunk := file.read(CHUNK_SIZE):
                yield chunk


class StderrProgress:
    """A one-line ``uploading 12.0/80.0 MiB (15%)`` indicator, rewritten in place."""

    def __init__(self, stream: TextIO | None = None, label: str = "uploading") -> None:
        self.stream = stream or sys.stderr
        self.label = label

    def __call__(self, sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        end = "\n" if sent >= total else ""
        mib = 1 << 20
        self.stream.write(
            f"\r{self.label} {sent / mib:.1f}/{total / mib:.1f} MiB ({percent}%){end}"
        )
        self.stream.flush()


def default_progress(size: int) -> Progress | None:
    """A stderr progress line for large bodies when stderr is a terminal, else nothing."""
    if size > PROGRESS_THRESHOLD and sys.stderr.isatty():
        return StderrProgress()
    return None


def json_body(document: Any, media_type: str = JSON) -> Body:
    data = json.dumps(to_jsonable(document), separators=(",", ":")).encode()
    return Body(media_type, len(data), data=data)


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _require_pyarrow(what: str) -> Any:
    pa = _pyarrow()
    if pa is None:
        raise ConfigurationError(f"{what} needs pyarrow: {_DATA_EXTRA}")
    return pa


def _is_path(data: Any) -> bool:
    return isinstance(data, str | os.PathLike)


def _path(data: Any) -> tuple[Path, str]:
    path = Path(os.fspath(data))
    media_type = SUFFIXES.get(path.suffix.lower())
    if media_type is None:
        raise DataError(f"{path}: unknown file type; use .csv, .parquet or .json")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return path, media_type


def encode(data: DataLike) -> Body:
    """The request body for ``data`` (see :data:`DataLike`)."""
    if _is_path(data):
        path, media_type = _path(data)
        return Body(media_type, path.stat().st_size, path=path)
    if isinstance(data, bytes | bytearray | memoryview):
        raise DataError("raw bytes have no format: pass a path, a DataFrame, a Table or a dict")
    if isinstance(data, Mapping) and _pyarrow() is None:
        return json_body({"columns": {str(k): _column(v) for k, v in data.items()}})
    table = to_table(data)
    pa = _require_pyarrow("Arrow encoding")
    sink = pa.BufferOutputStream()  # Arrow's own buffer: half the time of an io.BytesIO
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    raw = memoryview(sink.getvalue()).cast("B")  # bytes, not signed chars
    return Body(ARROW_STREAM, raw.nbytes, data=raw)


def _column(values: Any) -> list[Any]:
    plain = to_jsonable(values)
    if not isinstance(plain, list):
        raise DataError(f"a column must be a sequence of values, not {type(values).__name__}")
    return plain


def to_table(data: DataLike) -> Any:
    """``data`` as a ``pyarrow.Table``, read as the server reads it (files included)."""
    pa = _require_pyarrow(f"sending a {type(data).__name__}")
    if _is_path(data):
        return _read_file(pa, *_path(data))
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, Mapping):
        columns: dict[str, Any] = {}
        for name, values in data.items():
            try:
                columns[str(name)] = pa.array(_array_like(values))
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise DataError(f"column {name!r}: mixed or invalid values: {exc}") from exc
        return pa.table(columns)
    pandas: Any = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DataError(f"cannot convert the DataFrame to Arrow: {exc}") from exc
    to_arrow = getattr(data, "to_arrow", None)  # polars DataFrames, and the like
    if callable(to_arrow):
        table = to_arrow()
        if isinstance(table, pa.Table):
            return table
    raise DataError(
        f"cannot send a {type(data).__name__}: pass a pandas or polars DataFrame, a pyarrow "
        "Table, a dict of columns, or the path of a .csv/.parquet file"
    )


def _array_like(values: Any) -> Any:
    if isinstance(values, list | tuple):
        return list(values)
    # numpy arrays and pandas Series go to pyarrow as they are
    if hasattr(values, "__array__") or hasattr(values, "__arrow_array__"):
        return values
    return list(values)


def _read_file(pa: Any, path: Path, media_type: str) -> Any:
    """Read a file the way the server's batch parser does."""
    try:
        if media_type == CSV:
            import pyarrow.csv as pa_csv

            options = pa_csv.ConvertOptions(strings_can_be_null=True)
            return pa_csv.read_csv(path, convert_options=options)
        if media_type == PARQUET:
            import pyarrow.parquet as pq

            return pq.read_table(path)
        document = json.loads(path.read_bytes())
        columns = document.get("columns") if isinstance(document, dict) else None
        if not isinstance(columns, dict):
            raise DataError(f'{path}: expected {{"columns": {{"name": [values...]}}}}')
        return pa.table({name: pa.array(values) for name, values in columns.items()})
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read: {exc}") from exc
