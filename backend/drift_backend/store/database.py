"""Connection to MongoDB through PyMongo's native async API, and the start-up indexes."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database as SyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

Document = dict[str, Any]
Database = AsyncDatabase[Document]

#: Every query the API and the worker make, by collection (``tests/store/test_indexes.py``
#: lists them). Look-ups by ``_id`` alone (reports, meta) need none.
INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("subject", ASCENDING), ("issuer", ASCENDING)], unique=True),
        IndexModel([("email", ASCENDING)]),
    ],
    "experiments": [
        IndexModel([("name", ASCENDING)], unique=True),
        IndexModel([("permissions.entity", ASCENDING)]),
        IndexModel([("public", ASCENDING)]),
    ],
    "drifts": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
        # The runs page sorts by (created_at, _id) for a stable order: with _id in the index
        # MongoDB walks it for a page (IXSCAN + LIMIT) instead of fetching and sorting every
        # run of the experiment. Kept beside the shorter ones above, which time ranges use:
        # SecantusDB drops the inclusive end of a range on a key that is not an index's last
        # (and, given both, plans a range on the shorter index).
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel(
            [
                ("experiment_id", ASCENDING),
                ("model", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ]
        ),
        IndexModel([("tags", ASCENDING)]),
        IndexModel([("job_status", ASCENDING), ("updated_at", ASCENDING)]),
    ],
    # Listings and the newest baseline (for a model) a check falls back to.
    "baselines": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
    ],
    # GridFS bucket of baseline profiles: a deleted experiment's files; chunks read in order.
    "baseline_profiles.files": [IndexModel([("metadata.experiment_id", ASCENDING)])],
    "baseline_profiles.chunks": [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
    ],
    "jobs": [
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
        IndexModel([("drift_id", ASCENDING)]),
    ],
    # Kept answers of requests with an Idempotency-Key, for 24 hours (idempotency/).
    "idempotency_keys": [
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=24 * 3600),
    ],
    # Chart data of finished checks (charts/): per-feature history by time, the heatmap's
    # runs by time, a run's results (deletion); check runs by time (violations, the heatmap's
    # last runs). None has the model: a query of one model filters the results of the
    # experiment's few models (``charts.queries.of_model``), and a check of 1,000 features
    # writes 1,000 results, each index costing SecantusDB about 45 ms of them (RETIRED).
    "feature_results": [
        IndexModel(
            [("experiment_id", ASCENDING), ("feature", ASCENDING), ("created_at", ASCENDING)]
        ),
        # The heatmap: the results of the last check runs, by their time span.
        IndexModel([("experiment_id", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("run_id", ASCENDING)]),
    ],
    "check_runs": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("created_at", DESCENDING)]
        ),
    ],
    # Run and check events (events/) are read by their numbers (_id) alone; their TTL index
    # takes its option from the settings, so events/repository.py makes it.
    # GridFS bucket of queued check batches: an experiment's are dropped when it is deleted.
    "batches.files": [IndexModel([("metadata.experiment_id", ASCENDING)])],
    "batches.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)],
    # notify: the delivery log (newest first), notifications not yet handed to targets.
    # Model performance (performance/): look-ups are by _id (batch, hour, model keys); these
    # serve the windows of a range, an experiment's deletion, and the TTL that removes a
    # predictions batch once its unlabelled predictions expire (its labelled rows live on
    # in the label batches). Batches have no experiment_id index: an experiment's deletion
    # selects them by their _id prefix.
    "performance_batches": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
    "performance_windows": [
        IndexModel([("experiment_id", ASCENDING), ("model", ASCENDING), ("start", ASCENDING)]),
    ],
    "performance_models": [IndexModel([("experiment_id", ASCENDING), ("model", ASCENDING)])],
    # a model's metrics per drift run, newest run first (an experiment's on delete);
    # a run's documents (GET .../drift/{id}/performance, its deletion).
    "performance_runs": [
        IndexModel(
            [
                ("experiment_id", ASCENDING),
                ("model", ASCENDING),
                ("run_created_at", DESCENDING),
                ("_id", DESCENDING),
            ]
        ),
        IndexModel([("experiment_id", ASCENDING), ("run_id", ASCENDING)]),
        # The keyset pages' time windows (store/keyset.py) are ranges on
        # run_created_at; on the longer index SecantusDB drops their inclusive end (as for
        # drifts, above), and given both it plans ranges on this one.
        IndexModel(
            [("experiment_id", ASCENDING), ("model", ASCENDING), ("run_created_at", DESCENDING)]
        ),
    ],
    # a model's newest decided window (alerts), decisions whose run is unwritten.
    "performance_decisions": [
        IndexModel([("experiment_id", ASCENDING), ("model", ASCENDING), ("start", ASCENDING)]),
        IndexModel([("pending_run", ASCENDING)], sparse=True),
    ],
    "notifications": [
        IndexModel([("experiment_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("state", ASCENDING), ("created_at", ASCENDING)]),
    ],
    # notify: an experiment's targets, in creation order.
    "alert_targets": [IndexModel([("experiment_id", ASCENDING), ("created_at", ASCENDING)])],
    # notify: claim the longest-due delivery, count by state (/metrics), a notification's
    # deliveries (the log), an experiment's (delete).
    "deliveries": [
        IndexModel([("state", ASCENDING), ("due_at", ASCENDING)]),
        IndexModel([("notification_id", ASCENDING)]),
        IndexModel([("experiment_id", ASCENDING)]),
    ],
    # Alerts (alerts/): an experiment's rules; groups by due time (the worker's
    # tick), by experiment and state (the alerts route), firing ones (the metrics' count),
    # by rule (a rule changed or deleted); an experiment's active silences.
    "alert_rules": [IndexModel([("experiment_id", ASCENDING), ("created_at", ASCENDING)])],
    "alert_groups": [
        IndexModel([("due_at", ASCENDING)]),
        IndexModel([("experiment_id", ASCENDING), ("state", ASCENDING)]),
        IndexModel([("state", ASCENDING)]),
        IndexModel([("rule_id", ASCENDING)]),
    ],
    "silences": [IndexModel([("experiment_id", ASCENDING), ("ends_at", ASCENDING)])],
    # perf: the run timeline's counts per 10 minutes, hour and day (its 6-hour spans inside)
    # (charts/run_counts.py), read by time ranges of one grain.
    "run_counts": [
        IndexModel([("experiment_id", ASCENDING), ("grain", ASCENDING), ("start", ASCENDING)]),
        IndexModel(
            [
                ("experiment_id", ASCENDING),
                ("model", ASCENDING),
                ("grain", ASCENDING),
                ("start", ASCENDING),
            ]
        ),
    ],
    # perf: where each run is counted (charts/run_counts.py); by run id, and an experiment's
    # on delete.
    "run_count_marks": [IndexModel([("experiment_id", ASCENDING)])],
    # scale: per-model run totals, newest run and check (charts/run_totals.py): /metrics
    # reads an experiment's; an experiment's on delete.
    "run_totals": [IndexModel([("experiment_id", ASCENDING)])],
    # scale: checks counted for the charts (charts/check_counts.py, feature_counts.py):
    # violations per hour and day and a feature's block per day (6-hour spans inside), by
    # time ranges;
    # the markers of counted checks (by run id; an experiment's on delete).
    "violation_counts": [
        IndexModel([("experiment_id", ASCENDING), ("grain", ASCENDING), ("start", ASCENDING)]),
        IndexModel(
            [
                ("experiment_id", ASCENDING),
                ("model", ASCENDING),
                ("grain", ASCENDING),
                ("start", ASCENDING),
            ]
        ),
    ],
    "check_count_marks": [IndexModel([("experiment_id", ASCENDING)])],
    "feature_counts": [
        IndexModel([("experiment_id", ASCENDING), ("block", ASCENDING), ("start", ASCENDING)]),
        IndexModel(
            [
                ("experiment_id", ASCENDING),
                ("model", ASCENDING),
                ("block", ASCENDING),
                ("start", ASCENDING),
            ]
        ),
    ],
}


def connect(url: str, *, timeout_seconds: float = 5.0) -> AsyncMongoClient[Document]:
    """A client that stores and returns timezone-aware UTC datetimes, and gives every
    operation at most ``timeout_seconds``.

    ``timeoutMS`` (the driver's client-side operation timeout) covers all of an operation:
    finding the server, waiting for a pooled connection, connecting, the server's work (sent
    as ``maxTimeMS``) and the driver's one retry, so a stopped or unreachable database fails
    each operation within the bound. Server selection and connecting get the same bound for
    the driver's background monitoring, which ``timeoutMS`` does not cover. Operations that
    may rightly take longer (index builds, large GridFS transfers) set their own deadline
    with ``pymongo.timeout``.
    """
    return AsyncMongoClient(url, **client_options(timeout_seconds))


def client_options(timeout_seconds: float) -> dict[str, Any]:
    """The driver options every client of ours takes (:func:`connect`'s, and the statistics
    processes' synchronous one in ``store.process_client``)."""
    timeout_ms = max(1, round(timeout_seconds * 1000))
    return {
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "timeoutMS": timeout_ms,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "connect": False,
    }


#: The slowest GridFS transfer rate given time: a large batch is one driver operation.
TRANSFER_BYTES_PER_SECOND = 4 * 1024 * 1024
#: Building an index on a large existing collection can take a while; the server must not
#: abort it at the per-operation bound.
INDEX_BUILD_SECONDS = 3600.0


def transfer_deadline(
    db: Database | SyncDatabase[Document], nbytes: int
) -> AbstractContextManager[None]:
    """A deadline for moving ``nbytes`` to or from GridFS: the client's per-operation bound
    plus the time the transfer takes at ``TRANSFER_BYTES_PER_SECOND``."""
    bound = db.client.options.timeout or 0.0
    return pymongo.timeout(bound + nbytes / TRANSFER_BYTES_PER_SECOND)


#: Server error codes that mean "not now" rather than "never": the server cannot reach its
#: peers, is shutting down, or is stepping down (the retryable-writes set of the driver specs).
TRANSIENT_CODES = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436}
)


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be reached or did not answer in time
    (worth retrying later), False for errors in what was asked (a duplicate key, a bad
    query, a document too large), which a retry would only repeat."""
    if isinstance(error, ConnectionFailure):
        # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, NotPrimaryError,
        # WaitQueueTimeoutError.
        return True
    if not isinstance(error, PyMongoError):
        return False
    if error.timeout:  # ExecutionTimeout, write-concern timeouts
        return True
    if isinstance(error, OperationFailure) and error.code in TRANSIENT_CODES:
        return True
    return error.has_error_label("RetryableWriteError")


#: Indexes earlier versions made and this one no longer wants: each write pays for every
#: index, so a deployment upgraded in place drops them at start-up.
RETIRED: dict[str, list[str]] = {
    "predictions": ["experiment_id_1"],
    # A filtered replay reads events by number and filters them (events/repository.py).
    "events": ["experiment_id_1__id_1"],
    # A model's feature history and results by time: the model-less indexes and a filter
    # (see INDEXES); writing 1,000 results took 0.30 s with them, 0.20 s without.
    "feature_results": [
        "experiment_id_1_model_1_feature_1_created_at_1",
        "experiment_id_1_model_1_created_at_1",
    ],
}


async def ensure_indexes(db: Database) -> None:
    with pymongo.timeout(INDEX_BUILD_SECONDS):
        for collection, indexes in INDEXES.items():
            await db[collection].create_indexes(indexes)
        for collection, names in RETIRED.items():
            present = {index["name"] async for index in await db[collection].list_indexes()}
            for name in present.intersection(names):
                await db[collection].drop_index(name)


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
    except Exception:  # any driver failure means "not ready"
        return False
    return True
