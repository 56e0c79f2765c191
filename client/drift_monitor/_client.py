"""``Client``: the whole v1 API over one ``httpx2.Client``, with retries and token refresh."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx2

from drift_monitor._auth import TokenSource, resolve_token_provider
from drift_monitor._config import Settings
from drift_monitor._data import (
    SUMMARY,
    Body,
    DataLike,
    Progress,
    default_progress,
    encode,
    json_body,
)
from drift_monitor._events import READ_TIMEOUT, Event, stream_events
from drift_monitor._exceptions import (
    AuthenticationError,
    CheckTimeout,
    ConfigurationError,
    ConflictError,
    ExperimentExists,
    ExperimentNotFound,
    FieldError,
    ServerError,
    TransportError,
    ValidationError,
    error_from_response,
    unreachable,
)
from drift_monitor._models import (
    Baseline,
    Bins,
    DefaultBaseline,
    Drift,
    DriftResult,
    Experiment,
    JobStatus,
    Level,
    Page,
    Pagination,
    Permission,
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
    add_answer,
    add_unsent,
    proba_columns,
    rows_of,
    split,
)
from drift_monitor._serialize import to_jsonable
from drift_monitor._spool import PERFORMANCE_ROUTES, Spool, performance_stream

__all__ = ["Client"]

logger = logging.getLogger("drift_monitor")

T = TypeVar("T")
PermissionLike = Permission | Mapping[str, Any]
Order = Literal["asc", "desc"]
#: Seconds a predictions or labels call spends at most replaying the spool's earlier
#: batches of the same model before sending its own.
SPOOL_REPLAY_BUDGET = 10.0

RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
#: Seconds to wait for the answer once an upload is sent (the server profiles the data).
UPLOAD_READ_TIMEOUT = 300.0
#: The server answers a check's ``wait`` for at most this long.
SERVER_MAX_WAIT = 60.0
_UNSET: Any = object()


class Client:
    """A client for the Drift Monitor v1 API.

    Settings not given here come from the environment (see ``docs/client.md``).
    ``transport`` replaces the httpx2 transport, e.g. for tests; ``sleep`` is the
    backoff sleep between retries.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: TokenSource | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        ca_bundle: str | None = None,
        insecure: bool | None = None,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = Settings.from_env(
            url=base_url, timeout=timeout, retries=retries, ca_bundle=ca_bundle, insecure=insecure
        )
        self._token = resolve_token_provider(token, timeout=self.settings.timeout)
        self._sleep = sleep
        # Bins of summary checks, so a check spooled later can still be sent as a summary.
        self._model_bins: dict[tuple[str, str], tuple[str, Bins]] = {}
        self._http = httpx2.Client(
            base_url=self.settings.api_url,
            timeout=self.settings.timeout,
            verify=self.settings.verify,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "drift-monitor-python/2"},
        )

    # Lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<drift_monitor.Client {self.settings.url!r}>"

    # Transport ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        body: Body | None = None,
        progress: Progress | None = None,
        timeout: httpx2.Timeout | None = None,
        idempotency_key: str | None = None,
    ) -> httpx2.Response:
        """Send one API request (``path`` under ``/api/v1``) and return the 2xx response.

        Requests that never reached the server (connect errors) are retried for every
        method. ``idempotent`` requests (default: GET, PUT, DELETE, and any request with an
        ``idempotency_key``) are also retried on other transport errors and on 502/503/504,
        where the server may have seen them. ``idempotency_key`` is sent as the
        ``Idempotency-Key`` header, unchanged on every retry, so the server answers a repeat
        with the first answer instead of doing the work twice.
        A ``body`` is streamed in chunks, calling ``progress(bytes_sent, total)``.
        """
        if idempotent is None:
            idempotent = idempotency_key is not None or method.upper() in {
                "GET",
                "HEAD",
                "PUT",
                "DELETE",
                "OPTIONS",
            }
        kwargs: dict[str, Any] = {"params": params}
        if json is not _UNSET:
            kwargs["json"] = to_jsonable(json)
        if timeout is not None:
            kwargs["timeout"] = timeout
        if body is not None and progress is None:
            progress = default_progress(body.size)
        attempt = 0
        refreshed = False
        # Whether an attempt may have been carried out although its answer was lost.
        maybe_processed = False
        while True:
            headers = {}
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            if self._token is not None:
                headers["Authorization"] = f"Bearer {self._token.get_token()}"
            if body is not None:
                # A fresh iterator per attempt; Content-Length lets the server refuse early.
                headers["Content-Type"] = body.media_type
                headers["Content-Length"] = str(body.size)
                kwargs["content"] = body.chunks(progress)
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx2.TransportError as exc:
                # Connect errors happen before a byte is sent, so even a POST is safe to repeat.
                before_send = isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout)
                maybe_processed = maybe_processed or not before_send
                if (before_send or idempotent) and attempt < self.settings.retries:
                    self._backoff(attempt, f"{method} {path}: {exc!r}")
                    attempt += 1
                    continue
                failed = TransportError(
                    f"{method} {self.settings.api_url}{path} failed: {exc or type(exc).__name__}"
                )
                failed.maybe_processed = maybe_processed
                raise failed from exc
            # A proxy's 502/504 may come after the server did the work; our 503s come before.
            maybe_processed = maybe_processed or response.status_code in {502, 504}
            if (
                response.status_code in RETRY_STATUSES
                and idempotent
                and attempt < self.settings.retries
            ):
                self._backoff(attempt, f"{method} {path}: HTTP {response.status_code}")
                attempt += 1
                continue
            if response.status_code == 401 and self._token is not None and not refreshed:
                # A cached token may have been revoked or expired early: fetch once more.
                refreshed = True
                if self._token.invalidate():
                    continue
            if response.is_error:
                error = self._error(response)
                if isinstance(error, ServerError):
                    error.maybe_processed = maybe_processed
                raise error
            return response

    def _backoff(self, attempt: int, why: str) -> None:
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        logger.info("retrying in %.2fs after %s", delay, why)
        self._sleep(delay)

    def _error(self, response: httpx2.Response) -> Exception:
        error = error_from_response(response)
        if isinstance(error, AuthenticationError) and self._token is None:
            hint = ConfigurationError(
                f"the server needs a token ({error.message}): set DRIFT_MONITOR_TOKEN, "
                "DRIFT_MONITOR_MYTOKEN (with MYTOKEN_SERVER) or OIDC_AGENT_ACCOUNT "
                "(with liboidcagent installed), or pass token= to Client"
            )
            hint.__cause__ = error
            return hint
        return error

    def _search(
        self,
        path: str,
        parse: Callable[[Mapping[str, Any]], T],
        query: Mapping[str, Any] | None,
        page: int,
        page_size: int,
        sort_by: str,
        order_by: Order,
    ) -> Page[T]:
        params = {"page": page, "page_size": page_size, "sort_by": sort_by, "order_by": order_by}
        # Searches only read, so they are as safe to retry as a GET.
        response = self.request(
            "POST", path, json=dict(query or {}), params=params, idempotent=True
        )
        items = [parse(item) for item in response.json()]
        return Page(items, Pagination.from_header(response.headers.get("X-Pagination")))

    def _iterate(self, search: Callable[[int], Page[T]]) -> Iterator[T]:
        page = 1
        while True:
            result = search(page)
            yield from result.items
            if result.pagination.next_page is None or not result.items:
                return
            page = result.pagination.next_page

    # Users ----------------------------------------------------------------------------------
    def entitlements(self) -> list[str]:
        """The entitlements (groups) of the token's user."""
        return [str(item) for item in self.request("GET", "/entitlements").json()["items"]]

    def register(self) -> User:
        """Register the token's user (``ConflictError`` if already registered)."""
        return User.from_json(self.request("POST", "/user", idempotency_key=new_key()).json())

    def get_user(self) -> User:
        """The registered user of the token."""
        return User.from_json(self.request("GET", "/user/self").json())

    def update_user(self) -> User:
        """Refresh the stored user (email) from the token."""
        return User.from_json(self.request("PUT", "/user/self").json())

    # Experiments ----------------------------------------------------------------------------
    def search_experiments(
        self,
        query: Mapping[str, Any] | None = None,
        *,
        page: int = 1,
        page_size: int = 10,
        sort_by: str = "created_at",
        order_by: Order = "desc",
    ) -> Page[Experiment]:
        """One page of readable experiments matching a filter such as ``{"name": "x"}``."""
        return self._search(
            "/experiment/search", Experiment.from_json, query, page, page_size, sort_by, order_by
        )

    def iter_experiments(
        self, query: Mapping[str, Any] | None = None, *, page_size: int = 100
    ) -> Iterator[Experiment]:
        """All readable experiments matching ``query``, fetched page by page."""
        return self._iterate(lambda n: self.search_experiments(query, page=n, page_size=page_size))

    def find_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``; ``ExperimentNotFound`` if there is none."""
        found = self.search_experiments({"name": name}, page_size=1)
        if not found.items:
            raise ExperimentNotFound(name)
        return found.items[0]

    def create_experiment(
        self,
        name: str,
        description: str | None = None,
        *,
        public: bool = False,
        permissions: Iterable[PermissionLike] | None = None,
        idempotency_key: str | None = None,
    ) -> Experiment:
        """Create an experiment (the caller gets Manage); ``ExperimentExists`` on 409."""
        body = {
            "name": name,
            "description": description,
            "public": public,
            "permissions": _permissions(permissions),
        }
        try:
            response = self.request(
                "POST", "/experiment", json=body, idempotency_key=idempotency_key or new_key()
            )
            return Experiment.from_json(response.json())
        except ConflictError as exc:
            raise ExperimentExists(
                f"an experiment named {name!r} already exists",
                status=exc.status,
                code=exc.code,
                response=exc.response,
            ) from exc

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.from_json(self.request("GET", f"/experiment/{experiment_id}").json())

    def replace_experiment(
        self,
        experiment_id: str,
        *,
        name: str,
        description: str | None = None,
        public: bool = False,
        permissions: Iterable[PermissionLike] | None = None,
    ) -> Experiment:
        """PUT: replace every field (permissions too; keep a Manage entry)."""
        body = {
            "name": name,
            "description": description,
            "public": public,
            "permissions": _permissions(permissions),
        }
        response = self.request("PUT", f"/experiment/{experiment_id}", json=body)
        return Experiment.from_json(response.json())

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        description: str | None = _UNSET,
        public: bool | None = None,
        permissions: Iterable[PermissionLike] | None = None,
    ) -> Experiment:
        """PATCH: change only the fields given (``description=None`` clears it)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if description is not _UNSET:
            body["description"] = description
        if public is not None:
            body["public"] = public
        if permissions is not None:
            body["permissions"] = _permissions(permissions)
        # Setting fields to given values is idempotent, so a 503 may be retried.
        response = self.request("PATCH", f"/experiment/{experiment_id}", json=body, idempotent=True)
        return Experiment.from_json(response.json())

    def set_drift_config(
        self,
        experiment_id: str,
        drift_config: Mapping[str, Any] | None = None,
        *,
        default_baselines: Iterable[DefaultBaseline | Mapping[str, Any]] | None = None,
    ) -> Experiment:
        """PATCH how server-side checks decide, and/or each model's default baseline.

        ``drift_config``: ``numerical_test``, ``categorical_test`` (a test name or ``auto``),
        ``features`` (``{name: {test, threshold}}``), ``alpha``, ``correction``
        (``bh``, ``holm``, ``bonferroni``, ``none``), ``effect_size_floor``, ``drift_share``.
        """
        body: dict[str, Any] = {}
        if drift_config is not None:
            body["drift_config"] = dict(drift_config)
        if default_baselines is not None:
            body["default_baselines"] = [
                d.to_json()
                if isinstance(d, DefaultBaseline)
                else {"model": d["model"], "baseline_id": d["baseline_id"]}
                for d in default_baselines
            ]
        response = self.request("PATCH", f"/experiment/{experiment_id}", json=body, idempotent=True)
        return Experiment.from_json(response.json())

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete an experiment and all its drift runs."""
        self.request("DELETE", f"/experiment/{experiment_id}")

    def list_permissions(self, experiment_id: str) -> list[Permission]:
        response = self.request("GET", f"/experiment/{experiment_id}/permissions")
        return [Permission.from_json(p) for p in response.json()]

    def grant_permission(
        self,
        experiment_id: str,
        level: Level,
        *,
        entity: str | None = None,
        email: str | None = None,
    ) -> list[Permission]:
        """Give a user (by id or ``email``) or an entitlement a level on the experiment."""
        if (entity is None) == (email is None):
            raise ValueError("give exactly one of entity= and email=")
        body: dict[str, Any] = {"level": level}
        body.update({"entity": entity} if entity is not None else {"email": email})
        # The server counts a grant as creating something: it takes an idempotency key too.
        response = self.request(
            "PUT", f"/experiment/{experiment_id}/permissions", json=body, idempotency_key=new_key()
        )
        return [Permission.from_json(p) for p in response.json()]

    def revoke_permission(self, experiment_id: str, entity: str) -> list[Permission]:
        response = self.request(
            "DELETE", f"/experiment/{experiment_id}/permissions", params={"entity": entity}
        )
        return [Permission.from_json(p) for p in response.json()]

    # Drift runs -----------------------------------------------------------------------------
    def search_drifts(
        self,
        experiment_id: str,
        query: Mapping[str, Any] | None = None,
        *,
        page: int = 1,
        page_size: int = 10,
        sort_by: str = "created_at",
        order_by: Order = "desc",
    ) -> Page[Drift]:
        """One page of an experiment's drift runs matching e.g. ``{"model": "m1"}``."""
        path = f"/experiment/{experiment_id}/drift/search"
        return self._search(path, Drift.from_json, query, page, page_size, sort_by, order_by)

    def iter_drifts(
        self, experiment_id: str, query: Mapping[str, Any] | None = None, *, page_size: int = 100
    ) -> Iterator[Drift]:
        return self._iterate(
            lambda n: self.search_drifts(experiment_id, query, page=n, page_size=page_size)
        )

    def create_drift(
        self,
        experiment_id: str,
        model: str,
        *,
        job_status: JobStatus = "Running",
        tags: Iterable[str] = (),
        drift_detected: bool = False,
        parameters: Mapping[str, Any] | None = None,
        concept_drift: DriftResult | None = None,
        data_drift: DriftResult | None = None,
        error: RunError | None = None,
        created_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Drift:
        """Start a drift run (needs Edit on the experiment).

        ``created_at`` (timezone-aware) backdates the run to when it really started; the
        server accepts it up to ``DRIFT_MAX_BACKDATE_DAYS`` (default 7) in the past.
        """
        body = _drift_body(
            model, job_status, tags, drift_detected, parameters, concept_drift, data_drift, error
        )
        if created_at is not None:
            if created_at.tzinfo is None:
                raise ValueError("created_at must be timezone-aware (e.g. datetime.now(UTC))")
            body["created_at"] = created_at.isoformat()
        response = self.request(
            "POST",
            f"/experiment/{experiment_id}/drift",
            json=body,
            idempotency_key=idempotency_key or new_key(),
        )
        return Drift.from_json(response.json())

    def get_drift(self, experiment_id: str, drift_id: str) -> Drift:
        response = self.request("GET", f"/experiment/{experiment_id}/drift/{drift_id}")
        return Drift.from_json(response.json())

    def replace_drift(
        self,
        experiment_id: str,
        drift_id: str,
        model: str,
        *,
        job_status: JobStatus,
        tags: Iterable[str] = (),
        drift_detected: bool = False,
        parameters: Mapping[str, Any] | None = None,
        concept_drift: DriftResult | None = None,
        data_drift: DriftResult | None = None,
        error: RunError | None = None,
    ) -> Drift:
        """PUT: replace a Running run's fields, or finish it as Completed or Failed."""
        body = _drift_body(
            model, job_status, tags, drift_detected, parameters, concept_drift, data_drift, error
        )
        response = self.request("PUT", f"/experiment/{experiment_id}/drift/{drift_id}", json=body)
        return Drift.from_json(response.json())

    def heartbeat(self, experiment_id: str, drift_id: str) -> Drift:
        """Tell the server a Running run is still alive."""
        path = f"/experiment/{experiment_id}/drift/{drift_id}/heartbeat"
        return Drift.from_json(self.request("POST", path, idempotent=True).json())

    def delete_drift(self, experiment_id: str, drift_id: str) -> None:
        self.request("DELETE", f"/experiment/{experiment_id}/drift/{drift_id}")

    # Baselines ------------------------------------------------------------------------------
    def upload_baseline(
        self,
        experiment_id: str,
        data: DataLike,
        *,
        name: str | None = None,
        model: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
        target: str | None = None,
        prediction: str | None = None,
        proba_prefix: str | None = None,
    ) -> Baseline:
        """Store reference data (profiled by the server) as a baseline of the experiment.

        ``data``: a pandas or polars DataFrame, a pyarrow Table, a dict of columns, or the
        path of a ``.csv``/``.parquet`` file (sent as it is). Arrow on the wire when pyarrow
        is installed. ``progress(bytes_sent, total)`` follows the upload.

        ``target`` and ``prediction`` (column names, with ``model``; optionally
        ``proba_prefix``, the prefix of one probability column per class) make the same
        upload ``model``'s labelled performance reference, returned in
        :attr:`Baseline.performance_reference`; those columns are not profiled.
        """
        chosen = {
            "name": name,
            "model": model,
            "target": target,
            "prediction": prediction,
            "proba_prefix": proba_prefix,
        }
        params = {k: v for k, v in chosen.items() if v is not None}
        response = self.request(
            "POST",
            f"/experiment/{experiment_id}/baseline",
            params=params,
            body=encode(data),
            progress=progress,
            timeout=self._upload_timeout(0.0),
            idempotency_key=idempotency_key or new_key(),
        )
        return Baseline.from_json(response.json())

    def list_baselines(self, experiment_id: str) -> list[Baseline]:
        """The experiment's baselines, newest first (without per-feature summaries)."""
        response = self.request("GET", f"/experiment/{experiment_id}/baseline")
        return [Baseline.from_json(b) for b in response.json()]

    def get_baseline(self, experiment_id: str, baseline_id: str) -> Baseline:
        response = self.request("GET", f"/experiment/{experiment_id}/baseline/{baseline_id}")
        return Baseline.from_json(response.json())

    def delete_baseline(self, experiment_id: str, baseline_id: str) -> None:
        self.request("DELETE", f"/experiment/{experiment_id}/baseline/{baseline_id}")

    def get_bins(self, experiment_id: str, baseline_id: str) -> Bins:
        """The baseline's frozen edges and categories (what summary mode counts on)."""
        path = f"/experiment/{experiment_id}/baseline/{baseline_id}/bins"
        return Bins.from_json(self.request("GET", path).json())

    def resolve_baseline(self, experiment_id: str, model: str) -> Baseline:
        """The baseline a check of ``model`` uses when it names none, as the server picks it:
        the experiment's default for ``model``, else the newest of ``model``, else the newest."""
        experiment = self.get_experiment(experiment_id)
        for entry in experiment.default_baselines:
            if entry.model == model:
                return self.get_baseline(experiment_id, entry.baseline_id)
        baselines = self.list_baselines(experiment_id)
        matching = [b for b in baselines if b.model == model] or baselines
        if matching:
            return matching[0]
        reason = "the experiment has no baseline yet: upload one first"
        raise ValidationError(
            reason,
            status=422,
            code="validation_error",
            errors=[FieldError("baseline", reason)],
        )

    # Model performance ----------------------------------------------------------------------
    def predictions(
        self,
        experiment_id: str,
        model: str,
        ids: Values,
        y_pred: Values,
        proba: Any = None,
        *,
        classes: Values | None = None,
        times: Values | None = None,
        batch_size: int = BATCH_ROWS,
        spool: Spool | bool = False,
        run: str | None = None,
    ) -> PredictionsRecorded:
        """Record predictions of ``model``, each under an id unique per (experiment, model).

        ``proba``: class probabilities, a mapping (or DataFrame) class -> column, or rows
        with ``classes`` naming their columns. ``times``: when each prediction was made
        (default: when the server receives it; needs pyarrow). Sent as Arrow in batches of
        ``batch_size`` rows; an id sent again keeps its first prediction (``duplicates``),
        so a retried batch is harmless. ``spool`` (a :class:`Spool`, or ``True`` for the
        default one): batches the server cannot take now are spooled and sent later, in
        order (counted in ``spooled``). ``run``: the id of a drift run of ``model`` these
        predictions belong to; they then also count towards that run's metrics
        (:meth:`run_performance`)."""
        columns: dict[str, Any] = {"id": ids, "y_pred": y_pred, **proba_columns(proba, classes)}
        if times is not None:
            columns["time"] = times
        return self._record(
            PredictionsRecorded(), experiment_id, model, columns, batch_size, spool, run=run
        )

    def ground_truth(
        self,
        experiment: str,
        model: str,
        ids: Values,
        y_true: Values,
        *,
        times: Values | None = None,
        batch_size: int = BATCH_ROWS,
        spool: Spool | bool = False,
    ) -> LabelsRecorded:
        """Record labels of earlier predictions of ``model`` in ``experiment`` (its id), from
        any process, hours or weeks later. Upserted by id; ids never predicted are counted in
        ``unknown``, not an error. ``times``: when each label became known (default: now).
        ``spool``: as for :meth:`predictions`."""
        columns: dict[str, Any] = {"id": ids, "y_true": y_true}
        if times is not None:
            columns["time"] = times
        return self._record(LabelsRecorded(), experiment, model, columns, batch_size, spool)

    def _record(
        self,
        total: Recorded,
        experiment_id: str | None,
        model: str,
        columns: Mapping[str, Any],
        batch_size: int,
        spool: Spool | bool,
        *,
        experiment_name: str | None = None,
        run: str | None = None,
        run_key: str | None = None,
    ) -> Recorded:
        """Send predictions or labels (by the type of ``total``) in batches, adding each
        answer to ``total``. With a spool, a batch the server cannot take now goes to the
        spool, and so does every later one, and every one while earlier batches of the
        model still wait there (tried first): the server sees them in the order sent.
        Without ``experiment_id`` (not known while the server was unreachable), every batch
        is spooled under ``experiment_name``. ``run``: the drift run the predictions belong
        to; ``run_key``: instead, the spool key of a run whose creation waits in the spool:
        every batch is spooled, and replayed after that creation with the run's new id."""
        kind: Literal["predictions", "labels"] = (
            "predictions" if isinstance(total, PredictionsRecorded) else "labels"
        )
        store = Spool() if spool is True else spool or None
        server = self.settings.url
        stream = performance_stream(server, experiment_name or experiment_id or "", model)
        queued = experiment_id is None or run_key is not None
        upload: dict[str, str] = {}
        if run is not None:
            upload["run"] = run
        if run_key is not None:
            upload["run_key"] = run_key
        if store is not None and not queued and store.has_pending(server, stream):
            queued = not self._replay_stream(store, stream)
        for part in split(dict(columns), batch_size):
            body = encode(part)
            if not queued:
                assert experiment_id is not None
                try:
                    answer = self._performance_upload(
                        experiment_id, PERFORMANCE_ROUTES[kind], model, body, run=run
                    )
                except Exception as exc:
                    if store is None or not unreachable(exc):
                        raise
                    logger.warning(
                        "%s of model %s not sent (%s): this batch and the rest go to the "
                        "spool %s and are sent later",
                        kind,
                        model,
                        exc,
                        store.directory,
                    )
                    queued = True
                else:
                    total = add_answer(total, answer)
                    continue
            assert store is not None
            total = add_unsent(
                total,
                rows_of(part),
                spooled=self._spool_batch(
                    store, kind, stream, experiment_id, experiment_name, model, body, upload
                ),
            )
        return total

    def _replay_stream(self, store: Spool, stream: str) -> bool:
        """Send what the spool holds for this server (earlier batches of ``stream`` among
        it); whether none of ``stream`` waits any more."""
        try:
            store.flush(self, budget=SPOOL_REPLAY_BUDGET)
        except Exception as exc:
            # Replaying is a courtesy to earlier calls: it must never break this one.
            logger.warning("could not replay the spool %s: %s", store.directory, exc)
        return not store.has_pending(self.settings.url, stream)

    def _spool_batch(
        self,
        store: Spool,
        kind: Literal["predictions", "labels"],
        stream: str,
        experiment_id: str | None,
        experiment_name: str | None,
        model: str,
        body: Body,
        upload: Mapping[str, str] | None = None,
    ) -> bool:
        """Spool one batch; ``False`` (with a warning) when it does not fit under the cap or
        the disk refuses it. ``upload``: the batch's drift run (``run``, or ``run_key``)."""
        if not store.fits(body.size):
            logger.warning(
                "%s batch of model %s dropped: %d bytes do not fit in the spool's cap of %d "
                "bytes (DRIFT_MONITOR_SPOOL_MAX_BYTES)",
                kind,
                model,
                body.size,
                store.max_bytes,
            )
            return False
        try:
            store.add(
                kind,
                server=self.settings.url,
                run=stream,
                experiment_name=experiment_name or "",
                experiment_id=experiment_id,
                model=model,
                at=datetime.now(UTC),
                data=body,
                upload=upload,
            )
        except OSError as exc:
            logger.error("could not write the %s batch to the spool: %s", kind, exc)
            return False
        return True

    def performance_reference(
        self,
        experiment_id: str,
        model: str,
        y_true: Values,
        y_pred: Values,
        proba: Any = None,
        *,
        classes: Values | None = None,
    ) -> dict[str, Any]:
        """Store ``model``'s labelled reference (its expected performance, shown beside each
        window); the answer holds its metrics. One request: at most the server's row limit."""
        columns = {"y_true": y_true, "y_pred": y_pred, **proba_columns(proba, classes)}
        (part,) = split(columns, max(len(y_true), 1))
        return self._performance_upload(experiment_id, "performance-reference", model, encode(part))

    def performance(
        self,
        experiment_id: str,
        model: str,
        window: Literal["hour", "day", "week"] = "day",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[str, Any]:
        """Realised metrics per window, with label coverage and the reference (the JSON of
        ``GET /experiment/{id}/performance``; ``docs/performance.md`` describes it)."""
        params: dict[str, Any] = {"model": model, "window": window}
        if start is not None:
            params["from"] = start.isoformat()
        if end is not None:
            params["to"] = end.isoformat()
        response = self.request("GET", f"/experiment/{experiment_id}/performance", params=params)
        answer: dict[str, Any] = response.json()
        return answer

    def performance_runs(
        self,
        experiment_id: str,
        model: str,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 25,
    ) -> dict[str, Any]:
        """Metrics per drift run (over the predictions recorded with ``run=``), newest run
        first, one page: the JSON of ``GET /experiment/{id}/performance/runs``. Its
        ``next`` as ``after`` gives the older runs, its ``previous`` as ``before`` the newer
        ones (None: no more that way)."""
        params: dict[str, Any] = {"model": model, "limit": limit}
        if after is not None:
            params["after"] = after
        if before is not None:
            params["before"] = before
        path = f"/experiment/{experiment_id}/performance/runs"
        answer: dict[str, Any] = self.request("GET", path, params=params).json()
        return answer

    def run_performance(self, experiment_id: str, drift_id: str) -> dict[str, Any]:
        """The metrics of one drift run's predictions (``NotFoundError`` when it has none)."""
        path = f"/experiment/{experiment_id}/drift/{drift_id}/performance"
        answer: dict[str, Any] = self.request("GET", path).json()
        return answer

    def _performance_upload(
        self, experiment_id: str, route: str, model: str, body: Body, *, run: str | None = None
    ) -> dict[str, Any]:
        # Safe to repeat: predictions keep the first of an id, labels are upserts.
        params = {"model": model} if run is None else {"model": model, "run": run}
        response = self.request(
            "POST",
            f"/experiment/{experiment_id}/{route}",
            params=params,
            body=body,
            timeout=self._upload_timeout(0.0),
            idempotent=True,
        )
        answer: dict[str, Any] = response.json()
        return answer

    # Checks ---------------------------------------------------------------------------------
    def check(
        self,
        experiment_id: str,
        data: DataLike,
        *,
        model: str,
        baseline: str | Baseline | None = None,
        tags: Iterable[str] = (),
        wait: float = 0.0,
        summary_only: bool = False,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
    ) -> Drift:
        """Queue a server-side drift check of ``data`` (the current batch) against a baseline.

        Returns the new drift run: Running, or finished when the server completed it within
        ``wait`` seconds (the server caps ``wait``, at 60 s by default). ``baseline`` defaults
        to the one the server picks (see :meth:`resolve_baseline`). ``summary_only``: fetch
        the baseline's bins, count ``data`` on them locally and send only the counts, so no
        row leaves this machine (needs the ``data`` extra).
        """
        baseline_id = baseline.id if isinstance(baseline, Baseline) else baseline
        baseline_id, body = self._check_body(experiment_id, data, model, baseline_id, summary_only)
        return self._send_check(
            experiment_id,
            body,
            model=model,
            baseline_id=baseline_id,
            tags=tags,
            wait=wait,
            progress=progress,
            idempotency_key=idempotency_key or new_key(),
        )

    def _check_body(
        self,
        experiment_id: str,
        data: DataLike,
        model: str,
        baseline_id: str | None,
        summary_only: bool,
    ) -> tuple[str | None, Body]:
        if not summary_only:
            return baseline_id, encode(data)
        from drift_monitor._summary import summarize

        if baseline_id is None:
            baseline_id = self.resolve_baseline(experiment_id, model).id
        bins = self.get_bins(experiment_id, baseline_id)
        self._model_bins[(experiment_id, model)] = (baseline_id, bins)
        return baseline_id, json_body(summarize(data, bins), SUMMARY)

    def _known_bins(self, experiment_id: str, model: str) -> tuple[str, Bins] | None:
        """The bins a summary check of ``model`` last counted on, if this client has them."""
        return self._model_bins.get((experiment_id, model))

    def _send_check(
        self,
        experiment_id: str,
        body: Body,
        *,
        model: str,
        baseline_id: str | None,
        tags: Iterable[str],
        idempotency_key: str,
        wait: float = 0.0,
        progress: Progress | None = None,
        created_at: str | None = None,
    ) -> Drift:
        params: dict[str, Any] = {"model": model, "tags": list(tags)}
        if baseline_id is not None:
            params["baseline"] = baseline_id
        if wait > 0:
            params["wait"] = wait
        if created_at is not None:  # a spooled check keeps the time it really ran
            params["created_at"] = created_at
        response = self.request(
            "POST",
            f"/experiment/{experiment_id}/check",
            params=params,
            body=body,
            progress=progress,
            timeout=self._upload_timeout(min(wait, SERVER_MAX_WAIT)),
            idempotency_key=idempotency_key,
        )
        return Drift.from_json(response.json())

    def get_report(self, experiment_id: str, drift_id: str) -> Report:
        """The report of a finished check (``NotFoundError`` while it runs)."""
        response = self.request("GET", f"/experiment/{experiment_id}/drift/{drift_id}/report")
        return Report.from_json(response.json())

    def wait_for_run(
        self,
        experiment_id: str,
        drift_id: str,
        *,
        timeout: float = 600.0,
        interval: float = 1.0,
    ) -> Drift:
        """Poll a drift run until it is no longer Running; ``CheckTimeout`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = min(0.2, interval)
        while True:
            drift = self.get_drift(experiment_id, drift_id)
            if drift.job_status != "Running":
                return drift
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckTimeout(
                    f"drift run {drift_id} still Running after {timeout:g} s; it goes on on the "
                    "server: read its report later with Client.get_report",
                    drift_id,
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, interval)

    # Events ---------------------------------------------------------------------------------
    def events(
        self,
        experiment: str | Iterable[str] | None = None,
        last_event_id: str | None = None,
        *,
        follow: bool = True,
        read_timeout: float = READ_TIMEOUT,
    ) -> Iterator[Event]:
        """Run and check events the caller may read, as they happen (``GET /events``).

        ``experiment`` limits them to one or several experiments; ``last_event_id`` (an
        earlier :attr:`Event.id`) first replays what came after it and is still kept. The
        iterator reconnects after a dropped connection (and when the server ends the
        stream), resuming after the last event it gave; with ``follow=False`` it ends once
        the kept events are through. Stop it with ``close()`` or by leaving the loop.
        """
        return stream_events(
            self,
            experiment=experiment,
            last_event_id=last_event_id,
            follow=follow,
            read_timeout=read_timeout,
        )

    def _upload_timeout(self, wait: float) -> httpx2.Timeout:
        timeout = self.settings.timeout
        return httpx2.Timeout(timeout, read=max(timeout, UPLOAD_READ_TIMEOUT) + wait)


def new_key() -> str:
    """A fresh idempotency key: one per logical operation, kept across its retries."""
    return str(uuid.uuid4())


def _permissions(permissions: Iterable[PermissionLike] | None) -> list[dict[str, Any]]:
    return [
        p.to_json() if isinstance(p, Permission) else {"entity": p["entity"], "level": p["level"]}
        for p in permissions or ()
    ]


def _drift_body(
    model: str,
    job_status: JobStatus,
    tags: Iterable[str],
    drift_detected: bool,
    parameters: Mapping[str, Any] | None,
    concept_drift: DriftResult | None,
    data_drift: DriftResult | None,
    error: RunError | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "job_status": job_status,
        "tags": list(tags),
        "drift_detected": bool(drift_detected),
        "parameters": dict(parameters or {}),
    }
    if concept_drift is not None:
        body["concept_drift"] = concept_drift.to_json()
    if data_drift is not None:
        body["data_drift"] = data_drift.to_json()
    if error is not None:
        body["error"] = error.to_json()
    return body
