"""Runs inside a virtualenv holding PyPI's drift-monitor==1.1.1 (not our client).

Prints one JSON line describing what the legacy client saw.
"""

import json
import sys

import numpy as np
from drift_monitor import DriftMonitor, find_experiment, new_experiment, register

name = sys.argv[1]
register(accept_terms=True)
register(accept_terms=True)  # second call takes the 409 -> PUT /user/self path
created = new_experiment(name, "made by drift-monitor 1.1.1", public=False)

with DriftMonitor(name, "model-1", tags=["legacy"]) as monitor:
    monitor(True, {"p_value": np.float64(0.01), "sizes": np.array([1, 2, 3])})

failure = None
try:
    with DriftMonitor(name, "model-1") as monitor:
        raise RuntimeError("detector crashed")
except RuntimeError as error:
    failure = str(error)

found = find_experiment(name)
duplicate = None
try:
    new_experiment(name, "again")
except ValueError as error:
    duplicate = str(error)

print(
    json.dumps(
        {
            "created_id": str(created.id),
            "found_id": str(found.id),
            "permissions": found.permissions,
            "failure": failure,
            "duplicate": duplicate,
        }
    )
)
