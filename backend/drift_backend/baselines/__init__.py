"""Baseline profiles: parse batches, profile reference data, SageMaker/Flare import and export,
summary-mode bins and counts, constraint violations. Pure code (no database, no HTTP).

See ``docs/baselines.md``.
"""

from __future__ import annotations

from drift_backend.baselines.ingest import BatchError, Limits, parse_batch
from drift_backend.baselines.model import (
    BatchSummary,
    Bins,
    FeatureBins,
    FeatureCounts,
    FeatureProfile,
    MonitoringConfig,
    Profile,
)
from drift_backend.baselines.profile import build_profile
from drift_backend.baselines.sagemaker import (
    export_constraints,
    export_statistics,
    import_sagemaker,
)
from drift_backend.baselines.summary import bins, numeric_values, profile_batch, summarize
from drift_backend.baselines.violations import Violation, check_violations

__all__ = [
    "BatchError",
    "BatchSummary",
    "Bins",
    "FeatureBins",
    "FeatureCounts",
    "FeatureProfile",
    "Limits",
    "MonitoringConfig",
    "Profile",
    "Violation",
    "bins",
    "build_profile",
    "check_violations",
    "export_constraints",
    "export_statistics",
    "import_sagemaker",
    "numeric_values",
    "parse_batch",
    "profile_batch",
    "summarize",
]
