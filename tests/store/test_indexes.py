"""The start-up indexes cover every query the API and the worker make (each line below names
the query it serves), and creating them again at the next start changes nothing."""

from __future__ import annotations

from typing import Any

from drift_backend.store.database import Database, ensure_indexes

ASC, DESC = 1, -1

#: collection -> (key pattern, unique): the queries they serve.
EXPECTED: dict[str, list[tuple[tuple[tuple[str, int], ...], bool]]] = {
    "users": [
        ((("subject", ASC), ("issuer", ASC)), True),  # the caller's record, every request
        ((("email", ASC),), False),  # permission grants by verified email
    ],
    "experiments": [
        ((("name", ASC),), True),  # unique names
        ((("permissions.entity", ASC),), False),  # what a caller may read (search)
        ((("public", ASC),), False),  # ... and public experiments
    ],
    "drifts": [
        ((("experiment_id", ASC), ("created_at", DESC)), False),  # run search, newest first
        ((("experiment_id", ASC), ("model", ASC), ("created_at", DESC)), False),  # by model
        # the runs page's sort, (created_at, _id), walked in index order (MongoDB); and each
        # experiment's last run (drifts/latest.py: its first entry)
        ((("experiment_id", ASC), ("created_at", DESC), ("_id", DESC)), False),
        ((("experiment_id", ASC), ("model", ASC), ("created_at", DESC), ("_id", DESC)), False),
        ((("tags", ASC),), False),  # search by tag
        ((("job_status", ASC), ("updated_at", ASC)), False),  # the stale-run sweep
    ],
    "jobs": [
        ((("status", ASC), ("created_at", ASC)), False),  # claim the oldest queued job
        ((("status", ASC), ("lease_until", ASC)), False),  # expired leases, exhausted jobs
        ((("drift_id", ASC),), False),  # an experiment's jobs when it is deleted
    ],
    "baselines": [
        ((("experiment_id", ASC), ("created_at", DESC)), False),  # list, newest first
        ((("experiment_id", ASC), ("model", ASC), ("created_at", DESC)), False),  # check default
    ],
    "feature_results": [
        # a feature's history over time, of every model or one (the model a filter)
        ((("experiment_id", ASC), ("feature", ASC), ("created_at", ASC)), False),
        # the heatmap's cells: the last check runs' results, by their time span (and a
        # model's results of 6 hours after a run's deletion, feature_counts.recompute)
        ((("experiment_id", ASC), ("created_at", ASC)), False),
        ((("run_id", ASC),), False),  # a run's results on delete
    ],
    "check_runs": [
        # the last check runs (heatmap) and violations over time, of every model or one
        ((("experiment_id", ASC), ("created_at", DESC)), False),
        ((("experiment_id", ASC), ("model", ASC), ("created_at", DESC)), False),
    ],
    "performance_batches": [
        # (an experiment's are deleted by their _id prefix: no experiment_id index)
        ((("expires_at", ASC),), False),  # TTL: a batch's unlabelled predictions expire
    ],
    "performance_windows": [
        # the hours of a model's range (and an experiment's on delete)
        ((("experiment_id", ASC), ("model", ASC), ("start", ASC)), False),
    ],
    "performance_models": [
        ((("experiment_id", ASC), ("model", ASC)), False),  # an experiment's models
    ],
    # a model's runs newest first (and an experiment's on delete); a run's on delete
    "performance_runs": [
        ((("experiment_id", ASC), ("model", ASC), ("run_created_at", DESC), ("_id", DESC)), False),
        ((("experiment_id", ASC), ("run_id", ASC)), False),
        # The keyset windows' time ranges (SecantusDB keeps their inclusive end)
        ((("experiment_id", ASC), ("model", ASC), ("run_created_at", DESC)), False),
    ],
    "performance_decisions": [
        ((("experiment_id", ASC), ("model", ASC), ("start", ASC)), False),  # newest decided
        ((("pending_run", ASC),), False),  # decisions whose run is not written yet (sparse)
    ],
    "notifications": [
        # an experiment's delivery log, newest first
        ((("experiment_id", ASC), ("created_at", DESC), ("_id", DESC)), False),
        ((("state", ASC), ("created_at", ASC)), False),  # queued, not yet handed to targets
    ],
    "alert_targets": [
        ((("experiment_id", ASC), ("created_at", ASC)), False),  # an experiment's targets
    ],
    "deliveries": [
        ((("state", ASC), ("due_at", ASC)), False),  # claim the longest-due; counts by state
        ((("notification_id", ASC),), False),  # the delivery log's deliveries
        ((("experiment_id", ASC),), False),  # an experiment's, on delete
    ],
    # Alerts (alerts/).
    "alert_rules": [
        ((("experiment_id", ASC), ("created_at", ASC)), False),  # an experiment's rules
    ],
    "alert_groups": [
        ((("due_at", ASC),), False),  # the worker's tick claims groups whose time has come
        ((("experiment_id", ASC), ("state", ASC)), False),  # the alerts route
        ((("state", ASC),), False),  # firing groups by experiment (metrics)
        ((("rule_id", ASC),), False),  # a rule's groups when it changes or goes
    ],
    "silences": [
        ((("experiment_id", ASC), ("ends_at", ASC)), False),  # an experiment's active silences
    ],
    # perf: the run timeline's counts per hour and per 6 hours, of every model or one
    "run_counts": [
        ((("experiment_id", ASC), ("grain", ASC), ("start", ASC)), False),
        ((("experiment_id", ASC), ("model", ASC), ("grain", ASC), ("start", ASC)), False),
    ],
    "run_count_marks": [((("experiment_id", ASC),), False)],  # an experiment's, on delete
    # scale: per-model totals (/metrics reads an experiment's; delete drops them)
    "run_totals": [((("experiment_id", ASC),), False)],
    # scale: violations per hour and 6 hours, of every model or one (like run_counts)
    "violation_counts": [
        ((("experiment_id", ASC), ("grain", ASC), ("start", ASC)), False),
        ((("experiment_id", ASC), ("model", ASC), ("grain", ASC), ("start", ASC)), False),
    ],
    "check_count_marks": [((("experiment_id", ASC),), False)],  # an experiment's, on delete
    # scale: a feature's block of 6-hour spans by time, of every model or one
    "feature_counts": [
        ((("experiment_id", ASC), ("block", ASC), ("start", ASC)), False),
        ((("experiment_id", ASC), ("model", ASC), ("block", ASC), ("start", ASC)), False),
    ],
    "batches.files": [
        ((("metadata.experiment_id", ASC),), False),  # an experiment's batches on delete
    ],
    "batches.chunks": [
        ((("files_id", ASC), ("n", ASC)), True),  # GridFS reads a batch chunk by chunk
    ],
}


async def _indexes(db: Database, collection: str) -> set[tuple[tuple[tuple[str, int], ...], bool]]:
    found: set[tuple[tuple[tuple[str, int], ...], bool]] = set()
    async for index in await db[collection].list_indexes():
        info: dict[str, Any] = dict(index)
        key = tuple((field, int(direction)) for field, direction in info["key"].items())
        found.add((key, bool(info.get("unique", False))))
    return found


async def test_every_query_has_its_index(db: Database) -> None:
    await ensure_indexes(db)
    await ensure_indexes(db)  # the next start: nothing to change, nothing fails
    for collection, expected in EXPECTED.items():
        found = await _indexes(db, collection)
        missing = set(expected) - found
        assert not missing, f"{collection}: missing {missing}"


async def test_an_upgraded_database_loses_its_retired_indexes(db: Database) -> None:
    """An index an earlier version made (predictions by experiment) is dropped at start-up;
    the wanted ones stay."""
    await db.predictions.create_index([("experiment_id", ASC)])
    assert (((("experiment_id", ASC),), False)) in await _indexes(db, "predictions")
    await ensure_indexes(db)
    found = await _indexes(db, "predictions")
    assert ((("experiment_id", ASC),), False) not in found
