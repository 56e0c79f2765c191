"""Quickstart: record one drift run with the Drift Monitor SDK.

Needs DRIFT_MONITOR_URL and DRIFT_MONITOR_TOKEN (see the README) and an experiment named
"quickstart" that your user may edit.
"""

from drift_monitor import DriftMonitor

with DriftMonitor("quickstart", "model-1", tags=["demo"]) as monitor:
    # Whatever your own detectors found; the server stores and shows both kinds.
    monitor.concept(False, {"accuracy": 0.93, "baseline_accuracy": 0.94})
    monitor.data(True, {"drifted_features": ["age", "income"], "p_value": 0.003})

print("recorded a drift run for quickstart/model-1")
