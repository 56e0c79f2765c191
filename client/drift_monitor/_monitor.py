"""``DriftMonitor`` and the module-level helpers of drift-monitor 1.1.1."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from drift_monitor._client import Client, PermissionLike
from drift_monitor._exceptions import ConflictError
from drift_monitor._models import Drift, DriftResult, Experiment, JobStatus, RunError, User
from drift_monitor._serialize import to_jsonable

__all__ = ["DriftMonitor", "find_experiment", "new_experiment", "register"]

logger = logging.getLogger("drift_monitor")

# The server's limits for a run's error fields.
MAX_ERROR_TYPE = 256
MAX_ERROR_MESSAGE = 8192


@contextmanager
def _use(client: Client | None) -> Iterator[Client]:
    """The caller's client, or a temporary one configured from the environment."""
    if client is not None:
        yield client
        return
    with Client() as own:
        yield own


class DriftMonitor:
    """Record one drift run of ``model_id`` in the experiment named ``experiment_name``.

    Entering starts a Running run; leaving marks it Completed, or Failed with the
    exception's type and message. The exception always propagates.

    >>> with DriftMonitor("experiment-1", "model-1") as monitor:
    ...     monitor.concept(True, {"p_value": 0.01})
    ...     monitor.data(False, {"ks": 0.1})
    """

    def __init__(
        self,
        experiment_name: str,
        model_id: str,
        tags: Iterable[str] | None = None,
        *,
        client: Client | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.model_id = model_id
        self.tags = list(tags or [])
        self.experiment: Experiment | None = None
        self.drift: Drift | None = None
        self._client = client
        self._owns_client = client is None
        self._drift_detected = False
        self._parameters: dict[str, Any] = {}
        self._concept: DriftResult | None = None
        self._data: DriftResult | None = None

    # Recording ------------------------------------------------------------------------------
    def __call__(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Set the run's overall result, as in drift-monitor 1.1.1."""
        self._require_started()
        self._drift_detected = bool(detected)
        self._parameters = to_jsonable(dict(parameters or {}))

    def concept(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Record what the concept-drift detector found."""
        self._require_started()
        self._concept = DriftResult(bool(detected), to_jsonable(dict(parameters or {})))

    def data(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Record what the data-drift detector found."""
        self._require_started()
        self._data = DriftResult(bool(detected), to_jsonable(dict(parameters or {})))

    def heartbeat(self) -> Drift:
        """Tell the server this long-running job is still alive."""
        client, experiment, drift = self._require_started()
        self.drift = client.heartbeat(experiment.id, drift.id)
        return self.drift

    def _require_started(self) -> tuple[Client, Experiment, Drift]:
        if self._client is None or self.experiment is None or self.drift is None:
            raise RuntimeError("DriftMonitor used outside its 'with' block")
        return self._client, self.experiment, self.drift

    # Context --------------------------------------------------------------------------------
    def __enter__(self) -> DriftMonitor:
        if self._client is None:
            self._client = Client()
        try:
            self.experiment = self._client.find_experiment(self.experiment_name)
            self.drift = self._client.create_drift(
                self.experiment.id, self.model_id, job_status="Running", tags=self.tags
            )
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._finish(exc)
        except Exception as report_error:
            if exc is None:
                raise
            # The user's exception matters more than our bookkeeping: let it propagate.
            logger.warning(
                "could not mark drift run %s as Failed: %s",
                self.drift.id if self.drift else "?",
                report_error,
            )
        finally:
            self._close()
        # Returning None never suppresses the user's exception.

    def _finish(self, exc: BaseException | None) -> None:
        client, experiment, drift = self._require_started()
        status: JobStatus = "Completed" if exc is None else "Failed"
        error = None
        if exc is not None:
            error = RunError(type(exc).__name__[:MAX_ERROR_TYPE], str(exc)[:MAX_ERROR_MESSAGE])
        self.drift = client.replace_drift(
            experiment.id,
            drift.id,
            self.model_id,
            job_status=status,
            tags=self.tags,
            drift_detected=self._drift_detected,
            parameters=self._parameters,
            concept_drift=self._concept,
            data_drift=self._data,
            error=error,
        )

    def _close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None


def register(accept_terms: bool = False, *, client: Client | None = None) -> User:
    """Register the token's user, accepting the terms of service (update if registered)."""
    if not accept_terms:
        raise ValueError("You must accept the terms of service (register(accept_terms=True)).")
    with _use(client) as c:
        try:
            return c.register()
        except ConflictError:
            return c.update_user()


def new_experiment(
    name: str,
    description: str | None = None,
    public: bool = False,
    permissions: Iterable[PermissionLike] | None = None,
    *,
    client: Client | None = None,
) -> Experiment:
    """Create an experiment; ``ExperimentExists`` (a ValueError) if the name is taken."""
    with _use(client) as c:
        return c.create_experiment(name, description, public=public, permissions=permissions)


def find_experiment(name: str, *, client: Client | None = None) -> Experiment:
    """The experiment called ``name``; ``ExperimentNotFound`` (a ValueError) otherwise."""
    with _use(client) as c:
        return c.find_experiment(name)
