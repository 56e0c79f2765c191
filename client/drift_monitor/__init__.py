"""Drift Monitor client SDK.

>>> from drift_monitor import DriftMonitor
>>> with DriftMonitor("my-experiment", "model-1") as monitor:
...     monitor.concept(True, {"p_value": 0.01})
...     monitor.baseline(train_df)  # once
...     report = monitor.check(today_df)  # server-side tests
"""

from drift_monitor._auth import (
    CachedToken,
    CallableToken,
    MyTokenProvider,
    OidcAgentProvider,
    StaticToken,
    TokenProvider,
)
from drift_monitor._client import Client
from drift_monitor._config import Settings
from drift_monitor._data import StderrProgress
from drift_monitor._events import Event, EventType
from drift_monitor._exceptions import (
    APIError,
    AuthenticationError,
    CheckFailed,
    CheckTimeout,
    ConfigurationError,
    ConflictError,
    DataError,
    DriftMonitorError,
    ExperimentExists,
    ExperimentNotFound,
    FieldError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerError,
    TransportError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from drift_monitor._models import (
    Baseline,
    BaselineFeature,
    Bins,
    DefaultBaseline,
    Drift,
    DriftResult,
    Experiment,
    FeatureBins,
    FeatureResult,
    Histogram,
    JobStatus,
    Level,
    Page,
    Pagination,
    Permission,
    Report,
    RunError,
    User,
    Violation,
)
from drift_monitor._monitor import DriftMonitor, find_experiment, new_experiment, register
from drift_monitor._performance import LabelsRecorded, PredictionsRecorded
from drift_monitor._serialize import to_jsonable
from drift_monitor._spool import FlushResult, Spool, SpoolEntry
from drift_monitor._summary import summarize

__version__ = "2.0.0"

__all__ = [
    "APIError",
    "AuthenticationError",
    "Baseline",
    "BaselineFeature",
    "Bins",
    "CachedToken",
    "CallableToken",
    "CheckFailed",
    "CheckTimeout",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "DefaultBaseline",
    "Drift",
    "DriftMonitor",
    "DriftMonitorError",
    "DriftResult",
    "Event",
    "EventType",
    "Experiment",
    "ExperimentExists",
    "ExperimentNotFound",
    "FeatureBins",
    "FeatureResult",
    "FieldError",
    "FlushResult",
    "Histogram",
    "JobStatus",
    "LabelsRecorded",
    "Level",
    "MyTokenProvider",
    "NotFoundError",
    "OidcAgentProvider",
    "Page",
    "Pagination",
    "PayloadTooLargeError",
    "Permission",
    "PermissionDeniedError",
    "PredictionsRecorded",
    "Report",
    "RunError",
    "ServerError",
    "Settings",
    "Spool",
    "SpoolEntry",
    "StaticToken",
    "StderrProgress",
    "TokenProvider",
    "TransportError",
    "UnsupportedMediaTypeError",
    "User",
    "ValidationError",
    "Violation",
    "__version__",
    "find_experiment",
    "new_experiment",
    "register",
    "summarize",
    "to_jsonable",
]
