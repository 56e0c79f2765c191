"""What the alerts domain hands to the notify domain: one notification of one alert group.

The contract between the two: ``alerts`` decides *when* a group says something (firing,
repeat, resolved) and builds an :class:`AlertMessage`; ``notify`` decides *how* and *where*
(its targets, their formats, retries). ``dedup_key`` is unique per notification and stable
across re-evaluations of the same decision, so an evaluation retried after a worker crash
queues it once; it also becomes the Standard Webhooks ``webhook-id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

AlertStatus = Literal["firing", "resolved"]


@dataclass(frozen=True)
class FeatureAlert:
    """One feature behind an alert, with Flare's ``kind`` (``drift``, ``Bound``, ``Outlier``,
    ``Type``, ``Null``, ``Negative``, ``Categorical`` or a SageMaker check type)."""

    name: str
    kind: str
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    distance: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class AlertMessage:
    """One notification of one (rule, model) group."""

    dedup_key: str
    experiment_id: str
    experiment_name: str
    rule_id: str
    rule_name: str
    model: str
    status: AlertStatus
    starts_at: datetime
    summary: str
    ends_at: datetime | None = None
    run_id: str | None = None
    features: tuple[FeatureAlert, ...] = ()
    exception: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    #: The experiment's targets to send to; ``None`` means all of them.
    target_ids: tuple[str, ...] | None = None
    #: Alertmanager's ``severity`` label (``warning``, ``critical``, ...).
    severity: str = "warning"

    @property
    def group_key(self) -> str:
        return f"{self.rule_id}:{self.model}"
