"""``DriftMonitor`` and the module-level helpers of drift-monitor 1.1.1."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from drift_monitor._client import Client, PermissionLike
from drift_monitor._data import DataLike, Progress
from drift_monitor._exceptions import CheckFailed, ConflictError
from drift_monitor._models import (
    Baseline,
    Drift,
    DriftResult,
    Experiment,
    JobStatus,
    Report,
    RunError,
    User,
)
from drift_monitor._serialize import to_jsonable

__all__ = ["DriftMonitor", "find_experiment", "new_experiment", "register"]

logger = logging.getLogger("drift_monitor")

# The server's limits for a run's error fields.
MAX_ERROR_TYPE = 256
MAX_ERROR_MESSAGE = 8192
#: Default total time ``DriftMonitor.check`` waits for the server-side check to finish.
CHECK_TIMEOUT = 600.0


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

    :meth:`check` runs a server-side check, which is a drift run of its own (with the
    report); the context's run lists those runs' ids in ``parameters["check_runs"]`` when
    it finishes, and keeps its own ``drift_detected``, concept and data results.

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
        self.check_runs: list[str] = []

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

    # Server-side checks -------------------------------------------------------------------
    def baseline(
        self, data: DataLike, name: str | None = None, *, progress: Progress | None = None
    ) -> Baseline:
        """Upload reference data as a baseline of this monitor's model.

        Later checks of the model use the newest one (or the experiment's default for it).
        """
        client, experiment, _ = self._require_started()
        return client.upload_baseline(
            experiment.id, data, name=name, model=self.model_id, progress=progress
        )

    def check(
        self,
        data: DataLike,
        baseline: str | Baseline | None = None,
        summary_only: bool = False,
        wait: float = 60.0,
        *,
        timeout: float = CHECK_TIMEOUT,
        progress: Progress | None = None,
    ) -> Report:
        """Check ``data`` against a baseline on the server and return the typed report.

        The server holds the request up to ``wait`` seconds (it caps that at 60 s); if the
        check still runs, the run is polled until ``timeout`` seconds have passed in total,
        then :class:`CheckTimeout` (a ``TimeoutError``) names the run. A check that fails
        on the server raises :class:`CheckFailed`. ``summary_only`` sends counts only.
        """
        client, experiment, _ = self._require_started()
        start = time.monotonic()
        run = client.check(
            experiment.id,
            data,
            model=self.model_id,
            baseline=baseline,
            tags=self.tags,
            wait=min(wait, timeout),
            summary_only=summary_only,
            progress=progress,
        )
        self.check_runs.append(run.id)
        if run.job_status == "Running":
            remaining = max(0.0, timeout - (time.monotonic() - start))
            run = client.wait_for_run(experiment.id, run.id, timeout=remaining)
        if run.job_status == "Failed":
            why = f"{run.error.type}: {run.error.message}" if run.error else "no error recorded"
            raise CheckFailed(f"drift check {run.id} failed on the server ({why})", run)
        report = client.get_report(experiment.id, run.id)
        return dataclasses.replace(report, drift=run)

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
        parameters = dict(self._parameters)
        if self.check_runs:
            parameters["check_runs"] = list(self.check_runs)
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
            parameters=parameters,
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
