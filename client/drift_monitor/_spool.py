"""The spool: records ``DriftMonitor`` could not send, kept on disk and replayed later.

Layout of the spool directory (created with mode 0700: it may hold data batches)::

    pending/<entry>.json   waiting to be sent, replayed in name (= time) order
    inflight/<entry>.json  claimed by a process that is sending it right now
    data/<entry>.body      the batch of a spooled check, predictions or labels
    runs/<run>.json        what a replayed run creation returned (its server id)
    dead/<entry>.json      refused by the server for good, with the reason

Every file is written to ``tmp/`` first and renamed into place, so a reader never sees half
a file. A process claims an entry by renaming it from ``pending/`` to ``inflight/``: a rename
succeeds for one process only, so two flushes never send the same entry at once. A claim
left behind by a process that died is released after ``STALE_CLAIM_SECONDS``; sending it
again is harmless, because each entry carries the idempotency key of its first attempt
(predictions and labels need none: the first prediction of an id wins, labels are upserts).

Predictions and labels of one (server, experiment, model) form one stream (their ``run``,
:func:`performance_stream`), replayed in order like a run's records, so labels never
overtake the predictions they label.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drift_monitor._config import spool_settings
from drift_monitor._data import Body
from drift_monitor._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ExperimentNotFound,
    NotFoundError,
    ServerError,
    TransportError,
    ValidationError,
)

if TYPE_CHECKING:
    from drift_monitor._client import Client
    from drift_monitor._models import Drift

__all__ = ["FlushResult", "Spool", "SpoolEntry"]

logger = logging.getLogger("drift_monitor")

FORMAT_VERSION = 1
#: A claim older than this is taken to belong to a process that died while sending.
STALE_CLAIM_SECONDS = 900.0
#: Run mappings are kept this long, for a late repeat of a run's later records.
RUN_MAPPING_DAYS = 8
#: 4xx statuses that say "not now" rather than "never": the entry stays and is tried later.
TRANSIENT_STATUSES = frozenset({401, 408, 429})

Kind = Literal["create", "finish", "check", "predictions", "labels"]
#: The route each performance kind is posted to (``/experiment/{id}/<route>?model=``).
PERFORMANCE_ROUTES: dict[str, str] = {"predictions": "predictions", "labels": "ground-truth"}
State = Literal["pending", "inflight", "dead"]


@dataclass(frozen=True)
class SpoolEntry:
    """One spooled record, as ``drift-monitor spool list`` shows it."""

    id: str
    kind: Kind
    state: State
    server: str
    experiment: str
    model: str
    at: datetime
    run: str
    size: int = 0
    reason: str | None = None
    path: Path = field(default=Path(), compare=False, repr=False)
    #: Predictions of a run whose creation is spooled too: that run's spool key (they wait
    #: for its creation, and are sent with the id the server gave it).
    after: str | None = None

    @classmethod
    def _load(cls, path: Path, state: State) -> SpoolEntry:
        doc = json.loads(path.read_text(encoding="utf-8"))
        experiment = doc["experiment"]
        return cls(
            id=doc["id"],
            kind=doc["kind"],
            state=state,
            server=doc["server"],
            experiment=experiment.get("name") or experiment.get("id") or "?",
            model=doc["model"],
            at=datetime.fromisoformat(doc["at"]),
            run=doc["run"],
            size=int((doc.get("check") or doc.get("upload") or {}).get("size", 0)),
            reason=doc.get("reason"),
            path=path,
            after=(doc.get("upload") or {}).get("run_key"),
        )


@dataclass
class FlushResult:
    """What a flush did: entries sent, moved to ``dead/``, and still waiting."""

    sent: int = 0
    dead: int = 0
    waiting: int = 0
    #: Why the flush stopped early (server unreachable, token refused, time budget spent).
    stopped: str | None = None


class _Stop(Exception):
    """The server cannot take records now: keep them all and end this flush."""


class _Dead(Exception):
    """The server refused this record for good."""


class Spool:
    """A spool directory. ``Spool()`` uses ``DRIFT_MONITOR_SPOOL_DIR`` and
    ``DRIFT_MONITOR_SPOOL_MAX_BYTES`` (defaults: the platform's user cache directory, and
    100 MB for the batches of spooled checks together)."""

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, max_bytes: int | None = None
    ):
        default_dir, default_max = spool_settings()
        self.directory = Path(directory) if directory is not None else default_dir
        self.max_bytes = default_max if max_bytes is None else max_bytes

    def __repr__(self) -> str:
        return f"<drift_monitor.Spool {str(self.directory)!r}>"

    # Writing -------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _write_json(self, target: Path, doc: Mapping[str, Any]) -> None:
        self._atomic(target, json.dumps(doc, indent=1).encode())

    def _atomic(self, target: Path, content: bytes | Body) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._dir("tmp"), suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                if isinstance(content, Body):
                    for chunk in content.chunks():
                        file.write(chunk)
                else:
                    file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def data_bytes(self) -> int:
        """The size of the batches the spool holds now."""
        folder = self.directory / "data"
        if not folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in folder.glob("*.body"))

    def fits(self, size: int) -> bool:
        """Whether a batch of ``size`` bytes may be added without passing the cap."""
        return self.data_bytes() + size <= self.max_bytes

    def add(
        self,
        kind: Kind,
        *,
        server: str,
        run: str,
        experiment_name: str,
        experiment_id: str | None,
        model: str,
        at: datetime,
        drift_id: str | None = None,
        idempotency_key: str | None = None,
        body: Mapping[str, Any] | None = None,
        check: Mapping[str, Any] | None = None,
        data: Body | None = None,
        upload: Mapping[str, Any] | None = None,
    ) -> SpoolEntry:
        """Write one record (its batch first, so no entry exists without its data): a check's
        batch with ``check``, a batch of predictions or labels with ``upload``."""
        entry_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "id": entry_id,
            "kind": kind,
            "server": server,
            "run": run,
            "experiment": {"name": experiment_name, "id": experiment_id},
            "model": model,
            # Milliseconds: what the server's BSON datetimes keep, so the time round-trips.
            "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "drift_id": drift_id,
            "idempotency_key": idempotency_key,
            "body": dict(body) if body is not None else None,
            "check": None,
        }
        if data is not None:
            self._atomic(self._dir("data") / f"{entry_id}.body", data)
            meta = {"media_type": data.media_type, "size": data.size}
            if kind in PERFORMANCE_ROUTES:
                doc["upload"] = {**(upload or {}), **meta}
            else:
                doc["check"] = {**(check or {}), **meta}
        target = self._dir("pending") / f"{entry_id}.json"
        self._write_json(target, doc)
        return SpoolEntry._load(target, "pending")

    # Reading -------------------------------------------------------------------------------
    def entries(self, server: str | None = None) -> list[SpoolEntry]:
        """Every entry (pending, in flight, dead), oldest first; only ``server``'s if given."""
        found: list[SpoolEntry] = []
        for state in ("pending", "inflight", "dead"):
            folder = self.directory / state
            if not folder.is_dir():
                continue
            for path in folder.glob("*.json"):
                try:
                    entry = SpoolEntry._load(path, state)
                except FileNotFoundError:
                    continue  # sent or moved by another process meanwhile
                except (ValueError, KeyError) as exc:
                    logger.warning("unreadable spool entry %s: %s", path, exc)
                    continue
                if server is None or entry.server == server:
                    found.append(entry)
        return sorted(found, key=lambda e: e.id)

    def has_pending(self, server: str, run: str | None = None) -> bool:
        """Whether records for ``server`` (of ``run`` only, if given) wait or are in flight."""
        return any(
            e.state != "dead" and (run is None or e.run == run) for e in self.entries(server)
        )

    # Replaying -----------------------------------------------------------------------------
    def flush(self, client: Client, *, budget: float | None = None) -> FlushResult:
        """Send ``client``'s server's pending entries in order; stop at the first sign the
        server cannot take them (unreachable, 5xx, token refused), or after ``budget`` seconds.

        An entry the server refuses for good (another 4xx) moves to ``dead/`` with the reason,
        and so do the later entries of its run.
        """
        server = client.settings.url
        deadline = None if budget is None else time.monotonic() + budget
        result = FlushResult()
        self._release_stale_claims()
        self._prune_run_mappings()
        progress = True
        while progress and result.stopped is None:
            progress = False
            snapshot = self.entries(server)
            for entry in snapshot:
                if entry.state != "pending":
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    result.stopped = f"time budget of {budget:g} s spent"
                    break
                if self._waits_for_earlier(entry, snapshot):
                    continue
                outcome = self._replay(client, entry)
                if outcome == "sent":
                    result.sent += 1
                    progress = True
                elif outcome == "dead":
                    result.dead += 1
                    progress = True
                elif outcome.startswith("stop:"):
                    result.stopped = outcome[len("stop:") :]
                    break
        result.waiting = sum(1 for e in self.entries(server) if e.state != "dead")
        return result

    def _waits_for_earlier(self, entry: SpoolEntry, snapshot: list[SpoolEntry]) -> bool:
        """Whether an earlier record of the same run still waits or is being sent (perhaps
        by another process): a run's records go in order. Predictions of a drift run whose
        creation is spooled also wait for that creation (``after``)."""
        return any(
            (self.directory / state / e.path.name).exists()
            for e in snapshot
            if (e.run == entry.run or (e.run == entry.after and e.kind == "create"))
            and e.id < entry.id
            and e.state != "dead"
            for state in ("pending", "inflight")
        )

    def _replay(self, client: Client, entry: SpoolEntry) -> str:
        """``sent``, ``dead``, ``skip`` (claimed by another process) or ``stop:why``."""
        claimed = self._dir("inflight") / entry.path.name
        try:
            os.rename(entry.path, claimed)
        except FileNotFoundError:
            return "skip"  # another process claimed it first
        os.utime(claimed)  # the claim's age starts now
        doc: dict[str, Any] = {"id": entry.id, "kind": entry.kind, "run": entry.run}
        try:
            try:
                doc = json.loads(claimed.read_text(encoding="utf-8"))
                self._send(client, doc)
            except (KeyError, TypeError, ValueError) as exc:
                # Not the server's answer (those are APIErrors): the record itself is broken.
                raise _Dead(f"malformed record: {exc!r}") from exc
        except _Dead as dead:
            if entry.kind == "create":
                # Later records of the run have nothing to refer to: they follow it.
                self._write_run(entry.run, {"dead": str(dead)})
            self._bury(claimed, doc, str(dead))
            return "dead"
        except _Stop as stop:
            os.rename(claimed, entry.path)
            return f"stop:{stop}"
        except BaseException:
            os.rename(claimed, entry.path)
            raise
        self._data_path(doc["id"]).unlink(missing_ok=True)
        claimed.unlink(missing_ok=True)
        logger.info("sent spooled %s record %s of run %s", doc["kind"], doc["id"], doc["run"])
        return "sent"

    def _send(self, client: Client, doc: dict[str, Any]) -> None:
        run = self._run_mapping(doc["run"])
        if run is not None and "dead" in run:
            raise _Dead(f"its run's creation was refused: {run['dead']}")
        try:
            if doc["kind"] == "create":
                self._send_create(client, doc)
            elif doc["kind"] == "check":
                self._send_check(client, doc, run)
            elif doc["kind"] in PERFORMANCE_ROUTES:
                self._send_upload(client, doc)
            else:
                self._send_finish(client, doc, run)
        except (TransportError, ServerError, AuthenticationError, ConfigurationError) as exc:
            raise _Stop(str(exc)) from exc
        except ConflictError as exc:
            if doc["kind"] == "finish":
                raise _Dead(str(exc)) from exc  # the run was finished otherwise (e.g. timed out)
            raise _Stop(f"the first attempt is still in progress on the server: {exc}") from exc
        except APIError as exc:
            if exc.status in TRANSIENT_STATUSES:
                raise _Stop(str(exc)) from exc
            raise _Dead(str(exc)) from exc

    def _experiment_id(
        self, client: Client, doc: dict[str, Any], run: Mapping[str, Any] | None
    ) -> str:
        if run is not None and run.get("experiment_id"):
            return str(run["experiment_id"])
        known = doc["experiment"].get("id")
        if known:
            return str(known)
        try:
            return client.find_experiment(doc["experiment"]["name"]).id
        except ExperimentNotFound as exc:
            raise _Dead(str(exc)) from exc

    def _send_create(self, client: Client, doc: dict[str, Any]) -> None:
        experiment_id = self._experiment_id(client, doc, None)
        path = f"/experiment/{experiment_id}/drift"
        key = doc["idempotency_key"]
        body = {**doc["body"], "created_at": doc["at"]}
        try:
            response = client.request("POST", path, json=body, idempotency_key=key)
        except ValidationError as exc:
            if _names(exc, "idempotency"):
                # The first attempt reached the server after all, with the body as sent live
                # (without created_at): the same key and body answer the run it created then.
                response = client.request("POST", path, json=doc["body"], idempotency_key=key)
            else:
                raise
        drift_id = str(response.json()["id"])
        self._write_run(doc["run"], {"experiment_id": experiment_id, "drift_id": drift_id})

    def _send_check(
        self, client: Client, doc: dict[str, Any], run: Mapping[str, Any] | None
    ) -> None:
        experiment_id = self._experiment_id(client, doc, run)
        check = doc["check"]
        body = Body(check["media_type"], int(check["size"]), path=self._data_path(doc["id"]))

        def send(wait: float, created_at: str | None) -> Drift:
            return client._send_check(
                experiment_id,
                body,
                model=doc["model"],
                baseline_id=check.get("baseline"),
                tags=check.get("tags") or [],
                idempotency_key=doc["idempotency_key"],
                wait=wait,
                created_at=created_at,
            )

        try:
            # No waiting for the check to run: a replay must not hold up the job that flushes;
            # the run keeps the time the check really ran.
            drift = send(0.0, doc["at"])
        except ValidationError as exc:
            if not _names(exc, "idempotency"):
                raise
            # The live attempt reached the server, with its own ``wait`` and no
            # ``created_at`` (part of what the key was first used for): asked the same way,
            # the server answers that check.
            drift = send(float(check.get("wait") or 0.0), None)
        # The run's completion lists its checks' ids: it reads them from here.
        checks = [*(run or {}).get("checks", []), drift.id]
        self._write_run(doc["run"], {**(run or {}), "checks": list(dict.fromkeys(checks))})

    def _send_upload(self, client: Client, doc: dict[str, Any]) -> None:
        """A batch of predictions or labels, as it would have been sent live (safe to send
        twice: the first prediction of an id wins, labels are upserts), with its drift run:
        the one it named, or the id the spooled creation of its run got (``run_key``). When
        that run is unknown (its creation refused, or deleted on the server since), the
        predictions are sent without a run: they still count in their time windows."""
        experiment_id = self._experiment_id(client, doc, None)
        upload = doc["upload"]
        body = Body(upload["media_type"], int(upload["size"]), path=self._data_path(doc["id"]))
        route = PERFORMANCE_ROUTES[doc["kind"]]
        run = upload.get("run")
        if upload.get("run_key"):
            run = (self._run_mapping(upload["run_key"]) or {}).get("drift_id")
            if run is None:
                logger.warning(
                    "spooled predictions %s sent without their run: it was never created", doc["id"]
                )
        try:
            answer = client._performance_upload(experiment_id, route, doc["model"], body, run=run)
        except NotFoundError as exc:
            # Only a 404 about the run itself (its field), not one about the experiment.
            if run is None or "run" not in exc.fields:
                raise
            logger.warning("spooled predictions %s sent without their run: %s", doc["id"], exc)
            answer = client._performance_upload(experiment_id, route, doc["model"], body)
        logger.info("spooled %s of model %s sent: %s", doc["kind"], doc["model"], answer)

    def _send_finish(
        self, client: Client, doc: dict[str, Any], run: Mapping[str, Any] | None
    ) -> None:
        drift_id = doc.get("drift_id") or (run or {}).get("drift_id")
        if not drift_id:
            raise _Dead("its run was never created on the server")
        experiment_id = self._experiment_id(client, doc, run)
        body = dict(doc["body"])
        checks = [*body["parameters"].get("check_runs", []), *(run or {}).get("checks", [])]
        if checks:
            body["parameters"] = {**body["parameters"], "check_runs": checks}
        if body.get("job_status") in ("Completed", "Failed"):
            body["finished_at"] = doc["at"]  # when it really finished, not when it was replayed
        client.request("PUT", f"/experiment/{experiment_id}/drift/{drift_id}", json=body)

    # Bookkeeping ---------------------------------------------------------------------------
    def _data_path(self, entry_id: str) -> Path:
        return self.directory / "data" / f"{entry_id}.body"

    def _run_path(self, run: str) -> Path:
        return self.directory / "runs" / f"{run}.json"

    def _run_mapping(self, run: str) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads(self._run_path(run).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return loaded

    def _write_run(self, run: str, mapping: Mapping[str, Any]) -> None:
        self._dir("runs")
        self._write_json(self._run_path(run), mapping)

    def _bury(self, claimed: Path, doc: dict[str, Any], reason: str) -> None:
        logger.warning("spooled %s record %s refused for good: %s", doc["kind"], doc["id"], reason)
        self._write_json(self._dir("dead") / claimed.name, {**doc, "reason": reason})
        claimed.unlink(missing_ok=True)
        # A refused batch is not sent again: free its space under the cap.
        self._data_path(doc["id"]).unlink(missing_ok=True)

    def _release_stale_claims(self) -> None:
        folder = self.directory / "inflight"
        if not folder.is_dir():
            return
        cutoff = time.time() - STALE_CLAIM_SECONDS
        for path in folder.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    os.rename(path, self._dir("pending") / path.name)

    def _prune_run_mappings(self) -> None:
        folder = self.directory / "runs"
        if not folder.is_dir():
            return
        cutoff = (datetime.now(UTC) - timedelta(days=RUN_MAPPING_DAYS)).timestamp()
        for path in folder.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def remove_dead(self) -> int:
        """Delete the dead entries (after reading their reasons); returns how many."""
        folder = self.directory / "dead"
        if not folder.is_dir():
            return 0
        paths = list(folder.glob("*.json"))
        for path in paths:
            path.unlink(missing_ok=True)
        return len(paths)


def performance_stream(server: str, experiment: str, model: str) -> str:
    """The ``run`` of a model's spooled predictions and labels: one per (server, experiment
    name or id, model), so they replay in the order they were spooled."""
    digest = hashlib.sha256(f"{server}\0{experiment}\0{model}".encode()).hexdigest()[:24]
    return f"performance-{digest}"


def _names(error: ValidationError, word: str) -> bool:
    """Whether a 422 is about ``word`` (in a field name or the message)."""
    texts = [error.message, *(f"{e.field} {e.reason}" for e in error.errors)]
    return any(word in text.lower() for text in texts)
