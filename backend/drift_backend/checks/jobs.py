"""The ``check`` job: run by a worker, it turns a queued batch into a report and a finished run."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from cachetools import LRUCache
from gridfs.errors import NoFile

from drift_backend.alerts import trigger as alerts
from drift_backend.baselines import repository as baselines
from drift_backend.baselines.model import BatchSummary, Profile
from drift_backend.baselines.repository import StoredProfile
from drift_backend.charts import repository as charts
from drift_backend.checks import reduce, service
from drift_backend.checks.config import DriftConfig
from drift_backend.checks.engine import run_check
from drift_backend.checks.reduce import ReducedBatch
from drift_backend.drifts import service as drifts
from drift_backend.drifts.schemas import JobStatus
from drift_backend.events import service as events
from drift_backend.jobs.handlers import JobFailed, JobKind, WorkerContext
from drift_backend.jobs.queue import Claim
from drift_backend.store.process_client import process_database

#: How often a running check tells the stale-run sweeper it is alive.
TOUCH_SECONDS = 30.0

#: Bytes of stored profiles each cache below keeps (parsed ones count their stored size).
CACHED_BASELINE_BYTES = 256 * 1024 * 1024
#: In the worker process: stored profiles by baseline id, handed to the pool as bytes.
_BASELINES: LRUCache[str, StoredProfile] = LRUCache(
    maxsize=CACHED_BASELINE_BYTES, getsizeof=lambda stored: max(1, stored.size)
)
#: In each pool process: parsed profiles (with their values) by baseline id.
#: Keyed by (baseline id, whether its kept values came along).
_PROFILES: LRUCache[tuple[str, bool], tuple[Profile, int]] = LRUCache(
    maxsize=CACHED_BASELINE_BYTES, getsizeof=lambda entry: max(1, entry[1])
)


@dataclass(frozen=True)
class BatchFile:
    """A stored batch, named to a statistics process that reads it itself."""

    file_id: Any


#: What :func:`compute` answers when its process has not parsed the baseline yet and has no
#: database to read it from (a pool made without ``store.process_client``): the worker sends
#: the call again with the stored profile. With a database, each process reads a baseline
#: itself, once (at 1,000 exact features a stored profile is over 100 MB: sent by the worker,
#: it was pickled to whichever process took the call, 2-3 s, while another process that had
#: it parsed already might be the one that got it).
NEED_PROFILE = "__need_profile__"
#: ... when the baseline is gone (the worker fails the job: ``BaselineNotFound``).
NO_BASELINE = "__no_baseline__"
#: ... when its process has no database to read the batch from (a pool made without
#: ``store.process_client``): the worker sends the call again with the batch's bytes.
NEED_BATCH = "__need_batch__"
#: ... when the stored batch is gone (the worker fails the job: ``BatchNotFound``).
NO_BATCH = "__no_batch__"


def compute(
    baseline_id: str,
    stored: StoredProfile | None,
    with_values: bool,
    batch: bytes | BatchFile,
    mode: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """CPU part, run in a pool process: a batch (``raw``: Arrow IPC of every row; ``reduced``:
    what :mod:`.reduce` keeps; ``summary``: a BatchSummary JSON) against the stored profile
    -> report dict.

    The profile is this process's cached one, or ``stored``, or else read here
    (``{NEED_PROFILE: True}`` when this process has no database, ``{NO_BASELINE: True}``
    when the baseline is gone). ``batch`` is the batch's bytes, or its stored file, which
    this process reads itself (``{NEED_BATCH: True}`` when it has no database,
    ``{NO_BATCH: True}`` when it is gone).
    """
    key = (baseline_id, with_values)
    cached = _PROFILES.get(key)
    if cached is not None:
        profile = cached[0]
    else:
        if stored is None:
            db = process_database()
            if db is None:
                return {NEED_PROFILE: True}
            stored = baselines.read_stored(db, baseline_id, values=with_values)
            if stored is None:
                return {NO_BASELINE: True}
        profile = stored.parse()
        with contextlib.suppress(ValueError):  # larger than the whole cache: not kept
            _PROFILES[key] = (profile, stored.size)
    data: bytes | bytearray
    if isinstance(batch, BatchFile):
        db = process_database()
        if db is None:
            return {NEED_BATCH: True}
        try:
            data = service.read_batch(db, batch.file_id)
        except NoFile:
            return {NO_BATCH: True}
    else:
        data = batch
    current: pa.Table | ReducedBatch | BatchSummary
    if mode == "summary":
        current = BatchSummary.model_validate_json(data)
    elif mode == "reduced":
        current = reduce.decode(data)
    else:
        current = pa.ipc.open_stream(data).read_all()
    report = run_check(profile, current, DriftConfig.model_validate(config))
    return report.model_dump(mode="json")


def check_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report's summary, as v1 clients see it in the run's ``parameters`` (next to the
    ``baseline_id``, ``rows`` and storage ``mode`` the check was created with)."""
    summary = {
        "dataset_drift": report["dataset_drift"],
        "drift_share": report["drift_share"],
        "drifted_features": report["drifted_features"],
        "n_tested": report["n_tested"],
        "correction": report["correction"],
        "violations": len(report.get("violations", [])),
    }
    prediction = report.get("prediction")
    if prediction is not None:
        summary["prediction_drift"] = prediction["drifted"]
    return summary


async def _touch_run(ctx: WorkerContext, drift_id: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await drifts.touch(ctx.db, drift_id)


async def _stored_baseline(ctx: WorkerContext, baseline_id: str) -> StoredProfile | None:
    """The baseline's stored profile and values (the caller has just seen that it exists),
    or None when it was deleted since."""
    cached = _BASELINES.get(baseline_id)
    if cached is not None:
        return cached
    stored = await baselines.load_stored(ctx.db, baseline_id, values=True)
    if stored is not None:
        with contextlib.suppress(ValueError):  # larger than the whole cache: not kept
            _BASELINES[baseline_id] = stored
    return stored


async def handle(claim: Claim, ctx: WorkerContext) -> None:
    payload = claim.job["payload"]
    drift_id = claim.job["drift_id"]
    run = await drifts.find(ctx.db, drift_id)
    if run is None or run["job_status"] != JobStatus.Running:
        await service.drop_batch(ctx.db, payload["batch_file"])
        if run is not None:  # an earlier attempt may have died before queueing this
            await alerts.run_finished(ctx.db, run)
        return  # deleted or already finished (by an earlier attempt): nothing left to do
    baseline_id = payload["baseline_id"]
    if not await baselines.exists(ctx.db, baseline_id):
        raise JobFailed("BaselineNotFound", "the baseline was deleted before the check ran")
    mode = payload.get("mode", "raw")
    # Counts are all a summary is tested on: the kept values need not travel.
    with_values = mode != "summary"
    toucher = asyncio.create_task(_touch_run(ctx, drift_id, TOUCH_SECONDS))
    try:
        # The statistics process reads the batch itself (see store.process_client).
        batch: bytes | BatchFile = BatchFile(payload["batch_file"])
        baseline: StoredProfile | None = None
        for _ in range(3):  # at most one answer of each kind below, then the report
            report = await ctx.compute(
                compute, baseline_id, baseline, with_values, batch, mode, payload["config"]
            )
            if report.get(NO_BATCH):
                raise JobFailed("BatchNotFound", "the uploaded batch is gone")
            if report.get(NO_BASELINE):
                raise JobFailed("BaselineNotFound", "the baseline was deleted before the check ran")
            if report.get(NEED_BATCH):
                try:
                    batch = await service.load_batch(ctx.db, payload["batch_file"])
                except NoFile as error:
                    raise JobFailed("BatchNotFound", "the uploaded batch is gone") from error
            elif report.get(NEED_PROFILE):
                baseline = await _stored_baseline(ctx, baseline_id)
                if baseline is None:
                    raise JobFailed(
                        "BaselineNotFound", "the baseline was deleted before the check ran"
                    )
                if not with_values:
                    baseline = StoredProfile(baseline.profile, None)
            else:
                break
        if any(report.get(m) for m in (NEED_PROFILE, NEED_BATCH, NO_BATCH, NO_BASELINE)):
            raise RuntimeError("the statistics processes did not take the batch and baseline")
    finally:
        toucher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await toucher
    saved = await service.save_report(ctx.db, drift_id, report)
    # An earlier attempt's report wins: the run's summary must match the report it points to.
    stored = report if saved else (await service.get_report(ctx.db, drift_id) or report)
    summary = check_summary(stored)
    # Before the run shows Completed, so a finished check always has its chart data; an
    # upsert, so a retried job rewrites it (deleted with the report when the run goes).
    await charts.record_check(ctx.db, run, stored)
    completed = await drifts.complete_check(
        ctx.db, drift_id, dataset_drift=bool(stored["dataset_drift"]), summary=summary
    )
    if completed:
        await events.check_finished(ctx.db, run, stored)
    if not completed and await drifts.find(ctx.db, drift_id) is None:
        await service.delete_report(ctx.db, drift_id)  # the run was deleted meanwhile
    if not ctx.settings.keep_batches:
        await service.drop_batch(ctx.db, payload["batch_file"])


async def give_up(job: dict[str, Any], ctx: WorkerContext) -> None:
    """Every attempt failed: the run is Failed with the last error; the batch is dropped."""
    error = job.get("error") or {
        "type": "WorkerLost",
        "message": f"the check's worker stopped {job.get('attempts', 0)} times before finishing",
    }
    await drifts.fail(ctx.db, job["drift_id"], error)
    await service.drop_batch(ctx.db, job["payload"]["batch_file"])


CHECK_JOB = JobKind(handle=handle, give_up=give_up)
