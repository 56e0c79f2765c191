"""Where runs finish, their alert evaluation is queued: ``run_finished(db, run)``.

Called by ``drifts/service.py`` after every write that finishes a run (a client's, a check's,
the stale-run sweep's) and again on the paths that find a run finished by an earlier attempt
(a client's retried PUT, a retried check job), so a process that died between the run's write
and this call loses nothing: the job's id is derived from the run's, so the evaluation is
queued once however often it is asked for. The job runs on the worker pool with leases and
retries (``alerts/evaluation.py``). Like an event, queueing never fails the caller's write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

from drift_backend.alerts import repository
from drift_backend.jobs.queue import JobQueue
from drift_backend.store.cancellation import raise_if_cancelled
from drift_backend.store.database import Database

log = logging.getLogger(__name__)
#: The job kind an evaluation runs as (the composition root maps it to ``EVALUATE_JOB``).
EVALUATE_KIND = "alerts.evaluate"


def job_id(run_id: str) -> str:
    return f"alerts:{run_id}"


async def run_finished(db: Database, run: Mapping[str, Any]) -> None:
    """Queue the evaluation of a finished run against its experiment's alert rules."""
    await runs_finished(db, [run])


async def runs_finished(db: Database, runs: Sequence[Mapping[str, Any]]) -> None:
    """:func:`run_finished` for several runs: each experiment's rules looked up once."""
    with_rules: dict[str, bool] = {}
    for run in runs:
        try:
            experiment_id = run["experiment_id"]
            if experiment_id not in with_rules:
                with_rules[experiment_id] = await repository.has_rules(db, experiment_id)
            if not with_rules[experiment_id]:
                continue
            await JobQueue(db).enqueue(
                EVALUATE_KIND, {}, drift_id=run["_id"], job_id=job_id(run["_id"])
            )
        except DuplicateKeyError:
            pass  # queued before: a retried write
        except Exception:  # the run is written: losing its alert evaluation must not undo it
            raise_if_cancelled()
            log.warning("could not queue the alert evaluation of run %s", run["_id"], exc_info=True)
