"""Server-side checks: a baseline once, then a current batch the server tests against it.

Needs DRIFT_MONITOR_URL and DRIFT_MONITOR_TOKEN (see the README) and an experiment named
"quickstart" that your user may edit.
"""

import numpy as np
import pandas as pd
from drift_monitor import DriftMonitor

rng = np.random.default_rng(0)
train = pd.DataFrame(
    {
        "age": rng.normal(40, 10, 5000),
        "income": rng.lognormal(10, 0.5, 5000),
        "segment": rng.choice(["retail", "sme", "corporate"], 5000, p=[0.6, 0.3, 0.1]),
    }
)
today = train.sample(2000, random_state=1).assign(age=lambda df: df.age + 6)  # drift in age

with DriftMonitor("quickstart", "model-1", tags=["server-check"]) as monitor:
    monitor.baseline(train, name="training data")
    report = monitor.check(today)

print(f"dataset drift: {report.dataset_drift}; drifted features: {report.drifted_features}")
for feature in report.features:
    print(f"  {feature.feature:8} {feature.test:15} drifted={feature.drifted}")
