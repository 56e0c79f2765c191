"""Every metric family read from MongoDB at scrape time, and the samples sources return.

Declared once here, so the exposition, docs/metrics.md and the tests name the same things.
Labels are names (experiment, model, feature, test, status), never a run, batch or user id:
each series is one thing an operator watches, and its count stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    family: Family
    labels: tuple[str, ...]
    value: float


MODEL_LABELS = ("experiment", "model")
FEATURE_LABELS = ("experiment", "model", "feature", "test")

UP = Family(
    "drift_monitor_up",
    "1 when this scrape read MongoDB, 0 when it could not (the MongoDB series are then absent)",
)
READ_SECONDS = Family(
    "drift_monitor_metrics_read_seconds", "How long reading MongoDB for this scrape took"
)
OMITTED = Family(
    "drift_monitor_metrics_omitted",
    "Experiments, models or features left out of this scrape by the DRIFT_METRICS_MAX_* caps",
    ("kind",),
)
RUNS = Family("drift_monitor_runs", "Drift runs by job status", ("status",))
JOBS = Family(
    "drift_monitor_jobs", "Queued work (drift checks and other job kinds) by status", ("status",)
)
JOBS_STALE = Family(
    "drift_monitor_jobs_stale",
    "Running jobs whose lease expired (their worker died or stalled)",
)
QUEUE_OLDEST_AGE = Family(
    "drift_monitor_job_queue_oldest_age_seconds",
    "Age of the oldest queued job (0 when none waits)",
)
DATASET_DRIFT = Family(
    "drift_monitor_dataset_drift",
    "1 when the newest completed run of the model detected drift, else 0",
    MODEL_LABELS,
)
DATASET_DRIFT_SHARE = Family(
    "drift_monitor_dataset_drift_share",
    "Share of the tested features that drifted in the newest server check of the model",
    MODEL_LABELS,
)
LAST_RUN = Family(
    "drift_monitor_last_run_timestamp_seconds",
    "Unix time of the newest run of the model (any status)",
    MODEL_LABELS,
)
LAST_CHECK = Family(
    "drift_monitor_last_check_timestamp_seconds",
    "Unix time of the newest server check of the model (the feature series are from it)",
    MODEL_LABELS,
)
FEATURE_P_VALUE = Family(
    "drift_monitor_feature_p_value",
    "p-value of the feature's test in the newest check (p-value tests only)",
    FEATURE_LABELS,
)
FEATURE_P_VALUE_ADJUSTED = Family(
    "drift_monitor_feature_p_value_adjusted",
    "p-value corrected across the check's features (what decides drifted; p-value tests only)",
    FEATURE_LABELS,
)
FEATURE_DISTANCE = Family(
    "drift_monitor_feature_distance",
    "Distance of the feature's test in the newest check (distance tests only)",
    FEATURE_LABELS,
)
FEATURE_DRIFTED = Family(
    "drift_monitor_feature_drifted",
    "1 when the feature drifted in the newest check of the model, else 0",
    FEATURE_LABELS,
)
# Alerts and their delivery (issue 9): from alerts/ and notify/ (sources.py).
DELIVERIES = Family(
    "drift_monitor_deliveries",
    "Alert deliveries by state (pending, sending, delivered, failed, refused)",
    ("state",),
)
ALERTS_FIRING = Family(
    "drift_monitor_alerts_firing", "Alert groups (rule, model) firing now", ("experiment",)
)

FAMILIES: tuple[Family, ...] = (
    UP,
    READ_SECONDS,
    OMITTED,
    RUNS,
    JOBS,
    JOBS_STALE,
    QUEUE_OLDEST_AGE,
    DATASET_DRIFT,
    DATASET_DRIFT_SHARE,
    LAST_RUN,
    LAST_CHECK,
    FEATURE_P_VALUE,
    FEATURE_P_VALUE_ADJUSTED,
    FEATURE_DISTANCE,
    FEATURE_DRIFTED,
    DELIVERIES,
    ALERTS_FIRING,
)
