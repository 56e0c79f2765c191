"""Reading data uploads (baselines, check batches): the body in one buffer, parsed off the
event loop within the configured limits, failures in the one error shape."""

from __future__ import annotations

import asyncio

import pyarrow as pa
from fastapi import Request

from drift_backend.baselines.ingest import BatchError, Limits, parse_batch
from drift_backend.errors import APIError
from drift_backend.settings import Settings


def upload_limits(settings: Settings) -> Limits:
    return Limits(
        max_rows=settings.max_batch_rows,
        max_columns=settings.max_batch_columns,
        max_bytes=settings.max_upload_bytes,
    )


class BatchRejected(APIError):
    def __init__(self, error: BatchError) -> None:
        super().__init__(
            f"{error.field}: {error.reason}",
            errors=[{"field": error.field, "reason": error.reason}],
        )
        self.status = error.status
        self.code = {413: "payload_too_large", 415: "unsupported_media_type"}.get(
            error.status, "validation_error"
        )


async def read_body(request: Request) -> bytes | bytearray:
    """The request body. With a Content-Length it is read straight into one buffer of that
    size: one copy of a large upload fewer than ``Request.body`` makes (a third less time
    for 44 MB here)."""
    try:
        length = int(request.headers.get("content-length", ""))
    except ValueError:
        length = 0
    if length <= 0:
        return await request.body()
    buffer = bytearray(length)
    view = memoryview(buffer)
    end = 0
    async for chunk in request.stream():
        start, end = end, end + len(chunk)
        if end > length:  # the server frames the body by its length: cannot happen
            raise BatchRejected(BatchError("content-length", "body longer than declared", 400))
        view[start:end] = chunk
    view.release()
    del buffer[end:]  # a shorter body ends in ClientDisconnect first; kept exact anyway
    return buffer


async def read_table(request: Request, settings: Settings) -> pa.Table:
    data = await read_body(request)
    content_type = request.headers.get("content-type", "")
    try:
        return await asyncio.to_thread(parse_batch, data, content_type, upload_limits(settings))
    except BatchError as error:
        raise BatchRejected(error) from None
