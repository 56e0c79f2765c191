"""``DriftMonitor`` and the module-level helpers of drift-monitor 1.1.1."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from drift_monitor._client import Client, PermissionLike, _drift_body, new_key
from drift_monitor._data import SUMMARY, Body, DataLike, Progress, encode, json_body
from drift_monitor._exceptions import (
    CheckFailed,
    ConflictError,
    TransportError,
)
from drift_monitor._exceptions import unreachable as _unreachable
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
from drift_monitor._performance import (
    BATCH_ROWS,
    LabelsRecorded,
    PredictionsRecorded,
    Recorded,
    Values,
    proba_columns,
)
from drift_monitor._serialize import to_jsonable
from drift_monitor._spool import Kind, Spool

__all__ = ["DriftMonitor", "find_experiment", "new_experiment", "register"]

logger = logging.getLogger("drift_monitor")

# The server's limits for a run's error fields.
MAX_ERROR_TYPE = 256
MAX_ERROR_MESSAGE = 8192
#: Default total time ``DriftMonitor.check`` waits for the server-side check to finish.
CHECK_TIMEOUT = 600.0
#: Seconds a ``DriftMonitor`` spends at most replaying the spool (when it enters, and when
#: a run with spooled records ends), so a job start is never held up for long.
REPLAY_BUDGET = 10.0


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

    When the server cannot be reached (connection errors, or 502/503/504 after the
    retries), the run's records go to the spool (``spool=True``, the default: a
    :class:`Spool` from the environment; or pass one) and the job goes on; they are sent
    when the next ``DriftMonitor`` enters, or by ``drift-monitor spool flush``.
    ``spool=False`` raises those errors instead.

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
        spool: bool | Spool = True,
    ) -> None:
        self.experiment_name = experiment_name
        self.model_id = model_id
        self.tags = list(tags or [])
        self.experiment: Experiment | None = None
        self.drift: Drift | None = None
        #: Whether any record of this run went to the spool instead of the server.
        self.spooled = False
        #: Whether predictions or labels went to the spool (they replay when the run ends).
        self._spooled_data = False
        self._client = client
        self._owns_client = client is None
        self._spool_option = spool
        self._spool: Spool | None = None
        self._inside = False
        # The run creation's idempotency key also names the run in the spool.
        self._run_key = new_key()
        self._started_at = datetime.now(UTC)
        self._drift_detected = False
        self._parameters: dict[str, Any] = {}
        self._concept: DriftResult | None = None
        self._data: DriftResult | None = None
        self.check_runs: list[str] = []

    # Recording ------------------------------------------------------------------------------
    def __call__(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Set the run's overall result, as in drift-monitor 1.1.1."""
        self._require_inside()
        self._drift_detected = bool(detected)
        self._parameters = to_jsonable(dict(parameters or {}))

    def concept(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Record what the concept-drift detector found."""
        self._require_inside()
        self._concept = DriftResult(bool(detected), to_jsonable(dict(parameters or {})))

    def data(self, detected: object, parameters: Mapping[str, Any] | None = None) -> None:
        """Record what the data-drift detector found."""
        self._require_inside()
        self._data = DriftResult(bool(detected), to_jsonable(dict(parameters or {})))

    def heartbeat(self) -> Drift | None:
        """Tell the server this long-running job is still alive (``None`` while the run is
        spooled, or when the server cannot be reached and the spool is on)."""
        client = self._require_inside()
        if self.experiment is None or self.drift is None:
            return None
        try:
            self.drift = client.heartbeat(self.experiment.id, self.drift.id)
        except Exception as exc:
            if self._spool is None or not _unreachable(exc):
                raise
            logger.warning("heartbeat of drift run %s not sent: %s", self.drift.id, exc)
            return None
        return self.drift

    # Server-side checks -------------------------------------------------------------------
    def baseline(
        self,
        data: DataLike,
        name: str | None = None,
        *,
        progress: Progress | None = None,
        target: str | None = None,
        prediction: str | None = None,
        proba_prefix: str | None = None,
    ) -> Baseline:
        """Upload reference data as a baseline of this monitor's model.

        Later checks of the model use the newest one (or the experiment's default for it).
        With ``target`` and ``prediction`` (and ``proba_prefix``) column names, the upload
        is also the model's labelled performance reference (see
        :meth:`Client.upload_baseline`). Baselines are not spooled: without the server this
        raises :class:`TransportError`.
        """
        client = self._require_inside()
        if self.experiment is None:
            raise TransportError(
                "the server could not be reached when the run started; baselines are not spooled"
            )
        return client.upload_baseline(
            self.experiment.id,
            data,
            name=name,
            model=self.model_id,
            progress=progress,
            target=target,
            prediction=prediction,
            proba_prefix=proba_prefix,
        )

    # Model performance ----------------------------------------------------------------------
    def _experiment_id(self, what: str) -> tuple[Client, str]:
        client = self._require_inside()
        if self.experiment is None:
            raise TransportError(
                f"the server could not be reached when the run started; {what} are not spooled"
            )
        return client, self.experiment.id

    def _record(self, total: Recorded, columns: Mapping[str, Any], batch_size: int) -> Recorded:
        """Send predictions or labels; with the spool on, what the server cannot take now is
        spooled under this experiment's name (its id is not known while the server was
        unreachable at the start) and sent later, in order. Predictions carry this
        monitor's drift run: its id, or — when its creation waits in the spool — its spool
        key, so they are replayed after it, with the id the server gives it."""
        client = self._require_inside()
        if self.experiment is None and self._spool is None:
            raise TransportError(
                "the server could not be reached when the run started, and the spool is off"
            )
        recorded = client._record(
            total,
            self.experiment.id if self.experiment is not None else None,
            self.model_id,
            columns,
            batch_size,
            self._spool or False,
            experiment_name=self.experiment_name,
            **self._run_of(total),
        )
        self._spooled_data = self._spooled_data or recorded.spooled > 0
        return recorded

    def _run_of(self, total: Recorded) -> dict[str, str]:
        if not isinstance(total, PredictionsRecorded):
            return {}  # labels are joined to their predictions by id
        if self.drift is not None:
            return {"run": self.drift.id}
        if self._spool is not None:
            return {"run_key": self._run_key}
        return {}

    def predictions(
        self,
        ids: Values,
        y_pred: Values,
        proba: Any = None,
        features: DataLike | None = None,
        *,
        classes: Values | None = None,
        times: Values | None = None,
        batch_size: int = BATCH_ROWS,
    ) -> PredictionsRecorded:
        """Record this model's predictions under caller-chosen ids (unique per experiment
        and model), for metrics once :meth:`ground_truth` brings the labels. ``features``
        (the inputs of these predictions), when given, are also checked for data drift
        against the model's baseline (:meth:`check`). Batches the server cannot take now
        are spooled (with the spool on) and sent later, in order: see ``spooled``. They
        belong to this monitor's drift run and count towards its metrics
        (:meth:`Client.run_performance`)."""
        columns: dict[str, Any] = {"id": ids, "y_pred": y_pred, **proba_columns(proba, classes)}
        if times is not None:
            columns["time"] = times
        recorded = self._record(PredictionsRecorded(), columns, batch_size)
        if features is not None:
            self.check(features)
        return recorded

    def ground_truth(
        self,
        ids: Values,
        y_true: Values,
        *,
        times: Values | None = None,
        batch_size: int = BATCH_ROWS,
    ) -> LabelsRecorded:
        """Labels of this model's earlier predictions (any process may send them, also
        :meth:`Client.ground_truth`). Upserted by id; unknown ids are counted, not errors.
        Spooled like :meth:`predictions`, after them."""
        columns: dict[str, Any] = {"id": ids, "y_true": y_true}
        if times is not None:
            columns["time"] = times
        return self._record(LabelsRecorded(), columns, batch_size)

    def performance_reference(
        self,
        y_true: Values,
        y_pred: Values,
        proba: Any = None,
        *,
        classes: Values | None = None,
    ) -> dict[str, Any]:
        """This model's labelled reference: the expected performance windows are shown
        beside."""
        client, experiment_id = self._experiment_id("references")
        return client.performance_reference(
            experiment_id, self.model_id, y_true, y_pred, proba, classes=classes
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
    ) -> Report | None:
        """Check ``data`` against a baseline on the server and return the typed report.

        The server holds the request up to ``wait`` seconds (it caps that at 60 s); if the
        check still runs, the run is polled until ``timeout`` seconds have passed in total,
        then :class:`CheckTimeout` (a ``TimeoutError``) names the run. A check that fails
        on the server raises :class:`CheckFailed`. ``summary_only`` sends counts only.

        Returns ``None`` when the server cannot be reached and the spool is on: the batch is
        spooled (as a summary when this client knows the baseline's bins), or dropped with a
        warning when it does not fit under the spool's size cap.
        """
        client = self._require_inside()
        baseline_id = baseline.id if isinstance(baseline, Baseline) else baseline
        key = new_key()
        body: Body | None = None
        live_wait = min(wait, timeout)
        if self.experiment is not None and self.drift is not None:
            start = time.monotonic()
            try:
                baseline_id, body = client._check_body(
                    self.experiment.id, data, self.model_id, baseline_id, summary_only
                )
                run = client._send_check(
                    self.experiment.id,
                    body,
                    model=self.model_id,
                    baseline_id=baseline_id,
                    tags=self.tags,
                    wait=live_wait,
                    progress=progress,
                    idempotency_key=key,
                )
            except Exception as exc:
                if self._spool is None or not _unreachable(exc):
                    raise
                logger.warning("drift check not sent: %s", exc)
                # Only a request that may have been carried out must be replayed as it was.
                maybe_processed = body is not None and bool(getattr(exc, "maybe_processed", True))
                tried = (key, live_wait) if maybe_processed else None
                self._spool_check(client, data, baseline_id, summary_only, body, tried)
                return None
            return self._finish_check(client, self.experiment, run, start, timeout)
        self._spool_check(client, data, baseline_id, summary_only, None, None)
        return None

    def _finish_check(
        self, client: Client, experiment: Experiment, run: Drift, start: float, timeout: float
    ) -> Report:
        self.check_runs.append(run.id)
        if run.job_status == "Running":
            remaining = max(0.0, timeout - (time.monotonic() - start))
            run = client.wait_for_run(experiment.id, run.id, timeout=remaining)
        if run.job_status == "Failed":
            why = f"{run.error.type}: {run.error.message}" if run.error else "no error recorded"
            raise CheckFailed(f"drift check {run.id} failed on the server ({why})", run)
        report = client.get_report(experiment.id, run.id)
        return dataclasses.replace(report, drift=run)

    def _spool_check(
        self,
        client: Client,
        data: DataLike,
        baseline_id: str | None,
        summary_only: bool,
        built: Body | None,
        tried: tuple[str, float] | None,
    ) -> None:
        """Spool the batch: as a summary if this client knows the baseline's bins, else as
        Arrow; dropped with a warning if it does not fit under the spool's cap.

        ``built`` is the body of the live attempt, if one was made. ``tried`` (key, wait) says
        that attempt may have been carried out on the server although its answer was lost:
        it is then spooled exactly as sent, key included, so its replay answers the check it
        made instead of making a second one.
        """
        spool = self._spool
        assert spool is not None
        body: Body | None = None
        if tried is not None and built is not None:
            (key, wait), body = tried, built
        else:
            known = None
            if self.experiment is not None:
                known = client._known_bins(self.experiment.id, self.model_id)
                if known is not None and baseline_id not in (None, known[0]):
                    known = None
            key, wait = new_key(), 0.0
            if known is not None:
                from drift_monitor._summary import summarize

                baseline_id = known[0]
                body = json_body(summarize(data, known[1]), SUMMARY)
            elif summary_only:
                logger.warning(
                    "drift check of model %s dropped: summary mode needs the baseline's bins, "
                    "which this client does not have while the server cannot be reached",
                    self.model_id,
                )
                return
            else:
                body = built if built is not None and built.media_type != SUMMARY else encode(data)
        if not spool.fits(body.size):
            logger.warning(
                "drift check of model %s dropped: its batch (%d bytes) does not fit in the "
                "spool's cap of %d bytes (DRIFT_MONITOR_SPOOL_MAX_BYTES)",
                self.model_id,
                body.size,
                spool.max_bytes,
            )
            return
        self._add(
            "check",
            idempotency_key=key,
            check={"baseline": baseline_id, "tags": list(self.tags), "wait": wait},
            data=body,
        )

    def _require_inside(self) -> Client:
        if self._client is None or not self._inside:
            raise RuntimeError("DriftMonitor used outside its 'with' block")
        return self._client

    # Context --------------------------------------------------------------------------------
    def __enter__(self) -> DriftMonitor:
        if self._client is None:
            self._client = Client()
        client = self._client
        self._inside = True
        self._started_at = datetime.now(UTC)
        self._run_key = new_key()  # a monitor entered again starts another run
        try:
            self._spool = self._open_spool()
            if self._spool is not None:
                self._replay(client, self._spool)
            try:
                self.experiment = client.find_experiment(self.experiment_name)
                self.drift = client.create_drift(
                    self.experiment.id,
                    self.model_id,
                    job_status="Running",
                    tags=self.tags,
                    idempotency_key=self._run_key,
                )
            except Exception as exc:
                if self._spool is None or not _unreachable(exc):
                    raise
                logger.warning(
                    "drift run of model %s in %r not started on the server (%s); its records "
                    "go to the spool %s and are sent later",
                    self.model_id,
                    self.experiment_name,
                    exc,
                    self._spool.directory,
                )
                self._add("create", idempotency_key=self._run_key, body=self._run_body())
        except BaseException:
            self._inside = False
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
            self._inside = False
            self._close()
        # Returning None never suppresses the user's exception.

    def _run_body(
        self,
        status: JobStatus = "Running",
        parameters: Mapping[str, Any] | None = None,
        error: RunError | None = None,
    ) -> dict[str, Any]:
        if status == "Running":
            return _drift_body(self.model_id, status, self.tags, False, None, None, None, None)
        return _drift_body(
            self.model_id,
            status,
            self.tags,
            self._drift_detected,
            parameters,
            self._concept,
            self._data,
            error,
        )

    def _finish(self, exc: BaseException | None) -> None:
        client = self._require_inside()
        status: JobStatus = "Completed" if exc is None else "Failed"
        parameters = dict(self._parameters)
        if self.check_runs:
            parameters["check_runs"] = list(self.check_runs)
        error = None
        if exc is not None:
            error = RunError(type(exc).__name__[:MAX_ERROR_TYPE], str(exc)[:MAX_ERROR_MESSAGE])
        if self.experiment is not None and self.drift is not None and not self.spooled:
            try:
                self.drift = client.replace_drift(
                    self.experiment.id,
                    self.drift.id,
                    self.model_id,
                    job_status=status,
                    tags=self.tags,
                    drift_detected=self._drift_detected,
                    parameters=parameters,
                    concept_drift=self._concept,
                    data_drift=self._data,
                    error=error,
                )
                if self._spooled_data and self._spool is not None:
                    # The server took the run's end: send the spooled predictions and labels.
                    self._replay(client, self._spool)
                return
            except Exception as send_error:
                if self._spool is None or not _unreachable(send_error):
                    raise
                logger.warning(
                    "drift run %s not finished on the server (%s); the record goes to the "
                    "spool %s and is sent later",
                    self.drift.id,
                    send_error,
                    self._spool.directory,
                )
                self._add("finish", body=self._run_body(status, parameters, error))
                return
        # Earlier records of the run wait in the spool: this one goes after them.
        self._add("finish", body=self._run_body(status, parameters, error))
        if self._spool is not None and self.drift is not None:
            # The server took the run's creation, so it is likely back: send what waits.
            self._replay(client, self._spool)

    # Spool ----------------------------------------------------------------------------------
    def _open_spool(self) -> Spool | None:
        if self._spool_option is False:
            return None
        if self._spool_option is True:
            return Spool()
        return self._spool_option

    def _add(
        self,
        kind: Kind,
        *,
        idempotency_key: str | None = None,
        body: Mapping[str, Any] | None = None,
        check: Mapping[str, Any] | None = None,
        data: Body | None = None,
    ) -> None:
        assert self._spool is not None
        assert self._client is not None
        try:
            self._spool.add(
                kind,
                server=self._client.settings.url,
                run=self._run_key,
                experiment_name=self.experiment_name,
                experiment_id=self.experiment.id if self.experiment else None,
                model=self.model_id,
                at=self._started_at if kind == "create" else datetime.now(UTC),
                drift_id=self.drift.id if self.drift else None,
                idempotency_key=idempotency_key,
                body=body,
                check=check,
                data=data,
            )
        except OSError as exc:
            # The server is down and the disk refuses too: the record is lost, the job is not.
            logger.error("could not write the %s record to the spool: %s", kind, exc)
            return
        self.spooled = True

    def _replay(self, client: Client, spool: Spool) -> None:
        """Send what waits in the spool for this server, within ``REPLAY_BUDGET`` seconds."""
        try:
            if not spool.has_pending(client.settings.url):
                return
            result = spool.flush(client, budget=REPLAY_BUDGET)
        except Exception as exc:
            # Replaying is a courtesy to earlier jobs: it must never break this one.
            logger.warning("could not replay the spool %s: %s", spool.directory, exc)
            return
        if result.sent or result.dead:
            logger.info(
                "spool %s: %d records sent, %d refused (see drift-monitor spool list)",
                spool.directory,
                result.sent,
                result.dead,
            )
        if result.stopped is not None:
            logger.warning(
                "spool %s: %d records still wait (%s)",
                spool.directory,
                result.waiting,
                result.stopped,
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
