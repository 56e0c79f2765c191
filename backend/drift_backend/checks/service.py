"""Storage of check batches and reports, and check submission (:func:`submit_check`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pydantic import ValidationError as PydanticValidationError
from pymongo.database import Database as SyncDatabase
from pymongo.errors import DuplicateKeyError

from drift_backend.baselines.ingest import arrow_stream
from drift_backend.baselines.model import BatchSummary, Profile
from drift_backend.charts import repository as charts
from drift_backend.checks import reduce
from drift_backend.checks.config import DriftConfig
from drift_backend.drifts import service as drifts
from drift_backend.errors import ServiceUnavailable, ValidationFailed, first_problem
from drift_backend.jobs.queue import JobQueue
from drift_backend.schemas import utcnow
from drift_backend.settings import Settings
from drift_backend.store.database import Database, transfer_deadline
from drift_backend.store.files import read_whole

log = logging.getLogger(__name__)
#: The job kind a check runs as (the composition root maps it to ``checks.jobs.CHECK_JOB``).
CHECK_KIND = "check"
BATCH_BUCKET = "batches"
#: Large GridFS chunks: a batch is written and read whole, and fewer documents cost less.
#: 8 MiB (half the 16 MiB document limit): a 10,000 x 1,000 reduced batch (54 MB packed) is
#: seven documents, not 216 (each a round trip, a document and an oplog entry on SecantusDB):
#: storing 80 MB took 1.1-1.3 s there instead of 2.8-2.9 s on a loaded machine (load 7).
BATCH_CHUNK_BYTES = 8 * 1024 * 1024
#: Chunks made and waiting for the writer at most (memory: this many chunks and a part).
CHUNKS_AHEAD = 2


async def store_batch(db: Database, parts: Iterator[bytes], metadata: dict[str, Any]) -> Any:
    """Store a batch as a GridFS file, its parts as ``parts`` makes them: the parts are made
    in a thread while a task writes the chunks made before (at most :data:`CHUNKS_AHEAD`
    waiting), so making and storing overlap (PyMongo's GridFS writer holds up to 32 MB
    before its first write). The file document comes last, as GridFS writes it; a failure
    on either side deletes the chunks written."""
    file_id = ObjectId()
    chunks = db[f"{BATCH_BUCKET}.chunks"]
    size = BATCH_CHUNK_BYTES
    ready: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=CHUNKS_AHEAD)
    written = handed = length = 0

    async def write_chunks() -> None:
        nonlocal written
        while (data := await ready.get()) is not None:
            with transfer_deadline(db, len(data)):
                await chunks.insert_one({"files_id": file_id, "n": written, "data": data})
            written += 1

    writer = asyncio.ensure_future(write_chunks())

    async def hand_over(data: bytes | None) -> None:
        """Queue ``data`` for the writer; raise what stopped it, if it stopped."""
        nonlocal handed
        handed += data is not None
        put = asyncio.ensure_future(ready.put(data))
        await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            writer.result()  # it raised (it ends only on the None, which is queued last)

    try:
        pending = bytearray()
        while (part := await asyncio.to_thread(next, parts, None)) is not None:
            length += len(part)
            pending += part
            while len(pending) >= size:
                chunk = bytes(pending[:size])
                del pending[:size]
                await hand_over(chunk)
        if pending:
            await hand_over(bytes(pending))
        await hand_over(None)
        await writer
        await db[f"{BATCH_BUCKET}.files"].insert_one(
            {
                "_id": file_id,
                "length": length,
                "chunkSize": size,
                "uploadDate": utcnow(),
                "filename": "batch",
                "metadata": metadata,
            }
        )
    except BaseException as error:
        if isinstance(error, Exception):
            # The writer finishes the write in flight: a chunk landing after the clean-up
            # would stay behind.
            while not ready.empty():
                ready.get_nowait()
            ready.put_nowait(None)
        else:  # cancelled: the request is gone
            writer.cancel()
        with contextlib.suppress(BaseException):
            await writer
        if handed:
            await _compensate("drop the batch's chunks", chunks.delete_many({"files_id": file_id}))
        raise
    return file_id


async def load_batch(db: Database, file_id: Any) -> bytes:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET)
    stream = await bucket.open_download_stream(file_id)
    with transfer_deadline(db, stream.length):
        data: bytes = await stream.read()
    return data


def read_batch(db: SyncDatabase[dict[str, Any]], file_id: Any) -> bytearray:
    """A stored batch read whole with the synchronous driver, in a statistics process
    (``store.files.read_whole``). Raises ``NoFile`` when it or one of its chunks is gone."""
    return read_whole(db[f"{BATCH_BUCKET}.files"], db[f"{BATCH_BUCKET}.chunks"], file_id)


async def drop_batch(db: Database, file_id: Any) -> None:
    bucket = AsyncGridFSBucket(db, bucket_name=BATCH_BUCKET)
    with contextlib.suppress(NoFile):  # already gone: a retried job dropped it first
        await bucket.delete(file_id)


async def drop_batches_of(db: Database, experiment_id: str) -> None:
    """Every stored batch of an experiment (its checks' uploads not yet dropped)."""
    files = db[f"{BATCH_BUCKET}.files"].find({"metadata.experiment_id": experiment_id}, {"_id": 1})
    async for batch in files:
        await drop_batch(db, batch["_id"])


async def save_report(db: Database, drift_id: str, report: dict[str, Any]) -> bool:
    """Store the report once; a second writer (a retried job) finds it there."""
    try:
        await db.reports.insert_one({"_id": drift_id, "created_at": utcnow(), **report})
    except DuplicateKeyError:
        return False
    return True


async def get_report(db: Database, drift_id: str) -> dict[str, Any] | None:
    # Whole, its two storage fields dropped here: SecantusDB applies an exclusion projection
    # by deep-copying the document (a thousand-feature report is 1.4 MB).
    report = await db.reports.find_one({"_id": drift_id})
    if report is not None:
        del report["_id"]
        report.pop("created_at", None)
    return report


async def delete_report(db: Database, drift_id: str) -> None:
    """The report and the chart data made from it (every path that drops a report)."""
    await db.reports.delete_one({"_id": drift_id})
    await charts.delete_for_runs(db, [drift_id])


async def delete_reports(db: Database, drift_ids: list[str]) -> None:
    await db.reports.delete_many({"_id": {"$in": drift_ids}})
    await charts.delete_for_runs(db, drift_ids)


class SubmitFailed(ServiceUnavailable):
    """The check could not be queued; nothing of it is left behind, so a retry is safe."""


async def _compensate(step: str, action: Awaitable[object]) -> None:
    """Run one undo step; a failure is logged, not raised over the error being answered."""
    try:
        await action
    except Exception:  # the database may be what failed; the sweeper is the last resort
        log.exception("check submission: could not %s", step)


def check_config(stored: dict[str, Any], override: str | None) -> DriftConfig:
    """The experiment's configuration with one check's overrides (JSON; features merged)."""
    merged = dict(stored)
    if override:
        try:
            changes = json.loads(override)
        except json.JSONDecodeError:
            raise ValidationFailed("config", "must be a JSON object") from None
        if not isinstance(changes, dict):
            raise ValidationFailed("config", "must be a JSON object")
        overrides = changes.pop("features", {})
        if not isinstance(overrides, dict):
            raise ValidationFailed("config.features", "must be an object of feature settings")
        merged = {**merged, **changes, "features": {**merged.get("features", {}), **overrides}}
    try:
        return DriftConfig.model_validate(merged)
    except PydanticValidationError as error:
        raise ValidationFailed(*first_problem(error, "config")) from None


def encode_batch(
    current: pa.Table | BatchSummary, profile: Profile, config: DriftConfig
) -> tuple[str, int, Iterator[bytes]]:
    """``(mode, rows, parts)`` of what is stored of a current batch, made as ``parts`` is
    iterated (CPU work: iterate it off the event loop, as :func:`store_batch` does): the
    summary as sent; the rows only when a configured test needs them (``raw``); else what the
    tests read, reduced at upload (``reduced``), so the rows themselves are never stored."""
    if isinstance(current, BatchSummary):
        return "summary", current.row_count, _one_part(lambda: current.model_dump_json().encode())
    table = current
    if reduce.needs_raw(config):
        return "raw", table.num_rows, _one_part(lambda: arrow_stream(table))
    return "reduced", table.num_rows, reduce.encoded_parts(table, profile, rows=config.multivariate)


def _one_part(make: Callable[[], bytes]) -> Iterator[bytes]:
    yield make()


async def submit_check(
    db: Database,
    settings: Settings,
    experiment_id: str,
    *,
    baseline_id: str,
    profile: Profile,
    current: pa.Table | BatchSummary,
    config: DriftConfig,
    run_fields: dict[str, Any],
    created_by: str | None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Queue a check as one logical operation: store the batch, create the Running run,
    enqueue the job. MongoDB gives no transaction across GridFS and two collections here
    (and SecantusDB none at all), so a failed step undoes the earlier ones: the batch is
    dropped and a run already created is Failed with error type ``SubmitFailed`` (never
    left Running), and the caller gets :class:`SubmitFailed` (a 503).
    """
    mode, rows, parts = encode_batch(current, profile, config)
    file_id = await store_batch(
        db, parts, {"experiment_id": experiment_id, "rows": rows, "mode": mode}
    )
    try:
        run = await drifts.create(
            db,
            experiment_id,
            {
                **run_fields,
                "parameters": {"check": {"baseline_id": baseline_id, "rows": rows, "mode": mode}},
            },
            created_by,
            created_at=created_at,
        )
    except BaseException as error:  # cancelled too: the upload must not stay behind
        await _compensate("drop the batch", drop_batch(db, file_id))
        if isinstance(error, Exception):
            raise SubmitFailed(
                f"the check could not be recorded ({type(error).__name__})"
            ) from error
        raise
    queue = JobQueue(
        db, lease_seconds=settings.job_lease_seconds, max_attempts=settings.job_max_attempts
    )
    try:
        await queue.enqueue(
            CHECK_KIND,
            {
                "baseline_id": baseline_id,
                "batch_file": file_id,
                "mode": mode,
                "config": config.model_dump(mode="json"),
            },
            drift_id=run["_id"],
        )
    except BaseException as error:
        # The run first: once it is not Running, a job that did get queued drops the batch.
        reason = f"the check could not be queued ({type(error).__name__})"
        await _compensate(
            "fail the run", drifts.fail(db, run["_id"], {"type": "SubmitFailed", "message": reason})
        )
        await _compensate("drop the batch", drop_batch(db, file_id))
        if isinstance(error, Exception):
            raise SubmitFailed(reason) from error
        raise
    return run
