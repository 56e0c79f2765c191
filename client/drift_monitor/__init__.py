"""Drift Monitor client SDK.

>>> from drift_monitor import DriftMonitor
>>> with DriftMonitor("my-experiment", "model-1") as monitor:
...     monitor.concept(True, {"p_value": 0.01})
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
from drift_monitor._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DriftMonitorError,
    ExperimentExists,
    ExperimentNotFound,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TransportError,
    ValidationError,
)
from drift_monitor._models import (
    Drift,
    DriftResult,
    Experiment,
    JobStatus,
    Level,
    Page,
    Pagination,
    Permission,
    RunError,
    User,
)
from drift_monitor._monitor import DriftMonitor, find_experiment, new_experiment, register
from drift_monitor._serialize import to_jsonable

__version__ = "2.0.0"

__all__ = [
    "APIError",
    "AuthenticationError",
    "CachedToken",
    "CallableToken",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "Drift",
    "DriftMonitor",
    "DriftMonitorError",
    "DriftResult",
    "Experiment",
    "ExperimentExists",
    "ExperimentNotFound",
    "FieldError",
    "JobStatus",
    "Level",
    "MyTokenProvider",
    "NotFoundError",
    "OidcAgentProvider",
    "Page",
    "Pagination",
    "Permission",
    "PermissionDeniedError",
    "RunError",
    "ServerError",
    "Settings",
    "StaticToken",
    "TokenProvider",
    "TransportError",
    "User",
    "ValidationError",
    "__version__",
    "find_experiment",
    "new_experiment",
    "register",
    "to_jsonable",
]
