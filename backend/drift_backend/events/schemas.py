"""What an event is on the wire: the JSON of an SSE ``data:`` line."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class EventType(StrEnum):
    run_created = "run.created"
    run_updated = "run.updated"
    run_finished = "run.finished"
    check_finished = "check.finished"
    # Predictions or labels changed some windows of a model (no run: run_id "").
    performance_window_updated = "performance.window_updated"
    # A window's degraded decision changed; run_id is the concept-drift run.
    performance_decision_changed = "performance.decision_changed"


class Event(BaseModel):
    """One event. The SSE frame repeats ``id`` (as ``id:``) and ``type`` (as ``event:``)."""

    id: str = Field(description="Sequence number (decimal); orders events across replicas.")
    type: EventType
    experiment_id: str
    run_id: str
    model: str
    time: datetime
    payload: dict[str, Any] = Field(
        description=(
            "Runs: `status`, `drift_detected`, `concept_drift`, `data_drift`. Checks: "
            "`status`, `drift_detected`, `drifted_features` (a count), `n_tested`, "
            "`violations`. Performance windows: `cause` (`predictions` or `labels`), `hours` "
            "(the starts of the hours changed, at most 100), `n_hours`. Performance decisions: "
            "`window` (`length`, `start`, `end`), `degraded`, `degraded_metrics`, "
            "`changed_metrics`."
        )
    )
