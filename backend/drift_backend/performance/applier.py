"""One applier per model: its batches stored, then added to the windows in order, once each.

A batch's effect on the windows depends on the batches before it (the first prediction of
an id wins; a label replaces the id's earlier label), so a model's batches are applied in
the order of their ``seq`` by one applier at a time: whoever holds the model's lease
(``lease`` on its document, taken by the request that carries the batch, renewed per
batch). Within a process, requests for one model queue on a lock first, so the lease
changes hands between processes only.

The holder keeps an index of the model's prediction ids in memory (:class:`.IdIndex`),
valid up to the batch it last saw; on taking the lease it reads what other processes
applied since (the ids and the outcome each stored, not the data), applies any batch a dead
holder stored but did not apply, then stores and applies its own. A label fetches only the
prediction batches its ids are in (kept decoded in a bounded cache), and writes each label
that changed something as a joined row on its own batch: the id's prediction, label and
run, so the label outlives its prediction batch and a later change of it can be taken out.

Exactly once: an hour or run document records the last batch added to it (``a``); adding
batch ``seq`` again (after a holder died between its windows and ``applied``) adds nothing.
Expiry: a prediction batch's unlabelled ids leave the index once its ``expires_at`` has
passed (a label for one is then unknown, a new prediction of it is recorded); a TTL index
deletes the document. The holder compares times with its own clock: replicas whose clocks
differ by seconds may disagree for those seconds about whether an id expired.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from bson.binary import Binary
from cachetools import LRUCache

from drift_backend.drifts import service as drifts
from drift_backend.errors import ServiceUnavailable
from drift_backend.performance import repository, stored
from drift_backend.performance.columns import (
    Joined,
    Labels,
    Predictions,
    decode_joined,
    decode_labels,
    decode_predictions,
    hash_ids,
    ids_table,
    lags,
    read_ids,
    to_ipc,
)
from drift_backend.performance.index import IdIndex
from drift_backend.performance.windows import Part, hour_keys, increments, prediction_increments
from drift_backend.schemas import utcnow
from drift_backend.store.database import Database, Document

#: How long a lease lasts unless renewed: a holder renews it after each batch it applies.
LEASE_SECONDS = 60.0
#: How long a request waits for another process's applier of its model before it answers 503.
WAIT_SECONDS = 60.0
#: Models whose index a process keeps (least recently used dropped; rebuilt when needed).
MODELS_KEPT = 32
#: Decoded batches a process keeps, in bytes, over all models.
CACHE_BYTES = 256 * 2**20
#: Unknown ids named in an answer (all are counted).
UNKNOWN_SHOWN = 20


@dataclass
class _State:
    """A model's index as of batch ``seq``; ``live``: its prediction batches in the index
    whose predictions have not expired (seq -> expires_at)."""

    index: IdIndex = field(default_factory=IdIndex)
    seq: int = 0
    live: dict[int, datetime] = field(default_factory=dict)
    #: The model's ``generation`` the index was built for: batches rewritten (an upgrade
    #: moving old predictions into batches) change it, and every index is built again.
    generation: str | None = None


def _size(value: Any) -> int:
    batch = value[0] if isinstance(value, tuple) else value
    arrays = [getattr(batch, f.name) for f in dataclasses.fields(batch)]
    return sum(
        a.nbytes + (64 * len(a) if a.dtype == object else 0) for a in arrays if a is not None
    )


def _utc(moment: datetime) -> datetime:
    """Stored times come back aware from the service's clients (``tz_aware``), naive from
    others (a script's); both are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Registry:
    """A process's indexes and decoded batches, for one database."""

    def __init__(self) -> None:
        self.states: LRUCache[str, _State] = LRUCache(maxsize=MODELS_KEPT)
        self.cache: LRUCache[tuple[str, str, int], Any] = LRUCache(
            maxsize=CACHE_BYTES, getsizeof=_size
        )
        self.locks: dict[str, asyncio.Lock] = {}


#: By the database handle's identity (two handles of equal clients compare equal): one per
#: handle the process uses, dropped with it.
_registries: dict[int, _Registry] = {}


def _registry(db: Database) -> _Registry:
    found = _registries.get(id(db))
    if found is None:
        found = _registries[id(db)] = _Registry()
        weakref.finalize(db, _registries.pop, id(db), None)
    return found


@dataclass(frozen=True)
class Applied:
    """What applying a batch gave: the answer's counts, and the hours it changed."""

    outcome: dict[str, Any]
    hours: list[int]


@asynccontextmanager
async def session(db: Database, model_doc: Document) -> AsyncIterator[Applier]:
    """The model's applier, ready (caught up, any batch a dead holder left applied), for
    as long as the block runs."""
    registry = _registry(db)
    key = model_doc["_id"]
    lock = registry.locks.setdefault(key, asyncio.Lock())
    async with lock:
        owner = uuid.uuid4().hex
        doc = await _take(db, key, model_doc["model"], owner)
        try:
            applier = Applier(db, registry, doc, owner)
            try:
                await applier.ready()
                yield applier
            except BaseException:
                # The index may be ahead of what was stored: rebuilt on next use.
                registry.states.pop(key, None)
                raise
        finally:
            await repository.release_lease(db, key, owner)


async def _take(db: Database, key: str, model: str, owner: str) -> Document:
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.01
    while True:
        doc = await repository.take_lease(db, key, owner, LEASE_SECONDS)
        if doc is not None:
            return doc
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"model {model!r}: another server has been applying its batches for over "
                f"{WAIT_SECONDS:.0f} s; send again"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


class Applier:
    def __init__(self, db: Database, registry: _Registry, doc: Document, owner: str) -> None:
        self.db = db
        self.registry = registry
        self.owner = owner
        self.key: str = doc["_id"]
        self.experiment_id: str = doc["experiment_id"]
        self.model: str = doc["model"]
        self.regression = doc["task"] == "regression"
        self.classes: list[str] = list(doc["classes"])
        self.shift = float(doc.get("shift") or 0.0)
        self.applied = int(doc.get("applied") or 0)
        self.next_seq = max(self.applied, int(doc.get("stored") or 0)) + 1
        state = registry.states.get(self.key)
        generation = doc.get("generation")
        if state is None or state.seq > self.applied or state.generation != generation:
            state = _State(generation=generation)
            for cached in [k for k in registry.cache if k[0] == self.key]:
                del registry.cache[cached]  # batches of that number may differ now
        self.state = state
        registry.states[self.key] = state

    # --- getting ready ---------------------------------------------------------------------

    async def ready(self) -> None:
        if self.state.seq < self.applied:
            await self._replay(self.state.seq, self.applied)
        # Every batch is noted (``stored`` on the model) before it is stored.
        noted = self.next_seq - 1
        for doc in [doc async for doc in stored.read(self.db, self.key, self.applied, noted)]:
            await self._apply_stored(doc)
        if noted > self.applied:
            # A holder died between noting a batch and storing it: nothing to apply.
            await repository.note_applied(self.db, self.key, noted)
            self.applied = self.state.seq = noted
        self.next_seq = self.applied + 1

    async def _replay(self, after: int, upto: int) -> None:
        """Bring the index from batch ``after`` to ``upto`` from what was stored (ids and
        outcomes only: those batches' windows are written)."""
        now = utcnow()
        fields = {"kind": 1, "seq": 1, "ids": 1, "dups": 1, "jids": 1, "expires_at": 1}
        async for doc in stored.read(self.db, self.key, after, upto, fields):
            seq = int(doc["seq"])
            if doc["kind"] == "p":
                if _utc(doc["expires_at"]) > now:
                    ids = await asyncio.to_thread(read_ids, doc["ids"])
                    new = np.ones(len(ids), dtype=bool)
                    new[np.frombuffer(doc.get("dups") or b"", dtype="<i4")] = False
                    rows = np.flatnonzero(new)
                    self.state.index.add(hash_ids(ids[rows]), seq, rows.astype(np.int32))
                    self.state.live[seq] = _utc(doc["expires_at"])
            elif doc.get("jids") is not None:
                ids = await asyncio.to_thread(read_ids, doc["jids"])
                self._label_entries(hash_ids(ids), seq)
            self.state.seq = seq
        self.state.seq = upto

    def _label_entries(self, hashes: np.ndarray, seq: int) -> np.ndarray:
        index = self.state.index
        slots = index.lookup(hashes)
        missing = slots < 0
        if missing.any():  # labelled predictions whose batch expired
            n = int(missing.sum())
            slots[missing] = index.add(hashes[missing], -1, np.full(n, -1, dtype=np.int32))
        index.label(slots, seq, np.arange(len(hashes), dtype=np.int32))
        return slots

    async def _apply_stored(self, doc: Document) -> None:
        """A batch a holder stored and did not finish applying."""
        seq = int(doc["seq"])
        if doc["kind"] == "p":
            batch = await asyncio.to_thread(
                decode_predictions, doc["ids"], doc["data"], self.regression, len(self.classes)
            )
            run = doc.get("run")
            created = {run: doc["run_created_at"]} if run else {}
            await self._predictions(seq, batch, run, created, _utc(doc["expires_at"]), None)
        else:
            labels = await asyncio.to_thread(
                decode_labels, doc["ids"], doc["data"], self.regression
            )
            await self._labels(seq, labels, None)

    # --- storing -----------------------------------------------------------------------------

    def _new(self, kind: str, ids: np.ndarray, data: bytes, extra: Document) -> Document:
        """A new batch's document (stored once applying it has been worked out)."""
        seq = self.next_seq
        self.next_seq += 1
        return self.document(seq, kind, ids, data, extra)

    def document(
        self, seq: int, kind: str, ids: np.ndarray, data: bytes, extra: Document
    ) -> Document:
        """Batch ``seq`` of this model as stored (``kind`` "p" or "l"; ``data`` its encoded
        columns but the ids)."""
        return {
            "_id": stored.batch_key(self.key, seq),
            "experiment_id": self.experiment_id,
            "model": self.model,
            "seq": seq,
            "kind": kind,
            "n": len(ids),
            "received_at": utcnow(),
            "ids": Binary(to_ipc(ids_table(ids))),
            "data": Binary(data),
            **extra,
        }

    async def _record(self, seq: int, applied: Document, new: Document | None) -> None:
        """Store the batch with what applying it gives (one insert), or add that to a batch
        stored before: before its windows, so a holder that dies after this leaves a batch
        the next one applies again (adding nothing to the windows it reached)."""
        if new is None:
            await stored.set_applied(self.db, self.key, seq, applied)
            return
        await repository.note_stored(self.db, self.key, seq)
        await stored.insert(self.db, {**new, **applied})

    async def predictions(
        self,
        batch: Predictions,
        run: str | None,
        run_created_at: datetime | None,
        expires_at: datetime,
    ) -> Applied:
        """Store and apply a predictions batch (``run``: the drift run it was recorded with)."""
        data = await asyncio.to_thread(batch.encode, self.regression)
        extra = {"run": run, "run_created_at": run_created_at, "expires_at": expires_at}
        new = self._new("p", batch.ids, data, extra)
        created = {run: run_created_at} if run and run_created_at else {}
        return await self._predictions(new["seq"], batch, run, created, expires_at, new)

    async def labels(self, labels: Labels) -> Applied:
        data = await asyncio.to_thread(labels.encode, self.regression)
        new = self._new("l", labels.ids, data, {})
        return await self._labels(new["seq"], labels, new)

    # --- applying ------------------------------------------------------------------------------

    def _expire(self, now: datetime) -> None:
        gone = {seq for seq, at in self.state.live.items() if at <= now}
        if gone:
            self.state.index.drop_unlabelled(gone)
            for seq in gone:
                del self.state.live[seq]
                self.registry.cache.pop((self.key, "p", seq), None)

    async def _done(self, seq: int) -> None:
        await repository.note_applied(self.db, self.key, seq)
        self.applied = self.state.seq = seq
        await repository.renew_lease(self.db, self.key, self.owner, LEASE_SECONDS)

    async def _predictions(
        self,
        seq: int,
        batch: Predictions,
        run: str | None,
        created: dict[str, datetime],
        expires_at: datetime,
        new: Document | None,
    ) -> Applied:
        self._expire(utcnow())
        hashes = hash_ids(batch.ids)
        new_ids = self.state.index.lookup(hashes) < 0
        rows = np.flatnonzero(new_ids)
        self.state.index.add(hashes[rows], seq, rows.astype(np.int32))
        self.state.live[seq] = expires_at
        self.registry.cache[(self.key, "p", seq)] = (batch, run)
        keys = hour_keys(batch.times[rows])
        y = batch.y[rows]
        proba = None if batch.proba is None else batch.proba[rows]
        inc = await asyncio.to_thread(prediction_increments, keys, y, proba, self.classes)
        dups = np.flatnonzero(~new_ids).astype("<i4")
        outcome = {"received": len(batch.ids), "recorded": len(rows), "duplicates": len(dups)}
        await self._record(seq, {"outcome": outcome, "dups": Binary(dups.tobytes())}, new)
        await repository.add_to_windows(self.db, self.experiment_id, self.model, inc, seq=seq)
        if run and len(rows) and run in created:
            # Before its document: a reader told "has predictions" may find none yet (and
            # shows nothing), never the other way round.
            await drifts.mark_predictions(self.db, self.experiment_id, [run])
            whole = np.zeros(len(rows), dtype=np.int64)
            counted = await asyncio.to_thread(prediction_increments, whole, y, proba, self.classes)
            await repository.add_to_runs(
                self.db, self.experiment_id, self.model, {run: counted[0]}, created, seq=seq
            )
        await self._done(seq)
        return Applied(outcome, sorted({int(k) for k in keys}))

    async def _prediction_batch(self, seq: int) -> tuple[Predictions, str | None] | None:
        cached = self.registry.cache.get((self.key, "p", seq))
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        doc = await stored.get(self.db, self.key, seq, {"ids": 1, "data": 1, "run": 1})
        if doc is None:
            return None  # expired and deleted
        batch = await asyncio.to_thread(
            decode_predictions, doc["ids"], doc["data"], self.regression, len(self.classes)
        )
        found = (batch, doc.get("run"))
        self.registry.cache[(self.key, "p", seq)] = found
        return found

    async def _joined(self, seq: int) -> Joined | None:
        cached = self.registry.cache.get((self.key, "j", seq))
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        doc = await stored.get(self.db, self.key, seq, {"joined": 1})
        if doc is None or doc.get("joined") is None:
            return None
        joined = await asyncio.to_thread(
            decode_joined, doc["joined"], self.regression, len(self.classes)
        )
        self.registry.cache[(self.key, "j", seq)] = joined
        return joined

    async def _labels(self, seq: int, labels: Labels, new: Document | None) -> Applied:
        self._expire(utcnow())
        index = self.state.index
        n = len(labels.ids)
        hashes = hash_ids(labels.ids)
        slots = index.lookup(hashes)
        known = slots >= 0
        before = np.zeros(n, dtype=bool)
        before[known] = index.jseq[slots[known]] >= 0
        first = known & ~before
        n_classes = len(self.classes)
        target = np.float64 if self.regression else object
        rows = _Rows(
            times=np.zeros(n, dtype="datetime64[ms]"),
            y_pred=np.empty(n, dtype=target),
            proba=np.full((n, n_classes), np.nan) if n_classes else None,
            runs=np.full(n, "", dtype=object),
            old_y=np.empty(n, dtype=target),
            old_times=np.zeros(n, dtype="datetime64[ms]"),
            found=np.zeros(n, dtype=bool),
        )
        await self._from_predictions(np.flatnonzero(first), slots, labels.ids, rows)
        await self._from_joined(np.flatnonzero(before), slots, labels.ids, rows)
        first &= rows.found
        before &= rows.found
        unchanged = before & (rows.old_y == labels.y)
        changed = before & ~unchanged
        taken = np.flatnonzero(first | changed)
        joined = Joined(
            labels.ids[taken],
            labels.y[taken],
            labels.times[taken],
            rows.times[taken],
            rows.y_pred[taken],
            None if rows.proba is None else rows.proba[taken],
            rows.runs[taken],
        )
        hours = hour_keys(rows.times)
        plus = Part(
            hours[taken],
            rows.y_pred[taken],
            labels.y[taken],
            None if rows.proba is None else rows.proba[taken],
            lags(rows.times[taken], labels.times[taken]),
            1,
            first[taken],
        )
        out = np.flatnonzero(changed)
        minus = Part(
            hours[out],
            rows.y_pred[out],
            rows.old_y[out],
            None if rows.proba is None else rows.proba[out],
            lags(rows.times[out], rows.old_times[out]),
            -1,
        )
        inc, lag_max = await asyncio.to_thread(
            increments, [plus, minus], self.regression, self.classes, self.shift
        )
        unknown = labels.ids[~rows.found]
        outcome = {
            "received": n,
            "labelled": int(first.sum()),
            "changed": int(changed.sum()),
            "unchanged": int(unchanged.sum()),
            "unknown": len(unknown),
            "unknown_ids": [str(i) for i in unknown[:UNKNOWN_SHOWN]],
        }
        encoded = await asyncio.to_thread(joined.encode, self.regression)
        jids = to_ipc(ids_table(joined.ids))
        applied = {"outcome": outcome, "joined": Binary(encoded), "jids": Binary(jids)}
        await self._record(seq, applied, new)
        await repository.add_to_windows(
            self.db, self.experiment_id, self.model, inc, lag_max, seq=seq
        )
        await self._labels_to_runs(seq, plus, minus, rows.runs[taken], rows.runs[out])
        self._label_entries(hashes[taken], seq)
        self.registry.cache[(self.key, "j", seq)] = joined
        await self._done(seq)
        return Applied(outcome, sorted({int(h) for h in inc}))

    async def _from_predictions(
        self, wanted: np.ndarray, slots: np.ndarray, ids: np.ndarray, rows: _Rows
    ) -> None:
        """The predictions of first labels, from their batches."""
        index = self.state.index
        pseqs = index.pseq[slots[wanted]]
        for pseq in np.unique(pseqs).tolist():
            found = None if pseq < 0 else await self._prediction_batch(int(pseq))
            if found is None:
                continue  # expired: the labels are unknown
            batch, run = found
            chosen = wanted[pseqs == pseq]
            at = index.prow[slots[chosen]]
            same = batch.ids[at] == ids[chosen]  # a hash collision is no match
            chosen, at = chosen[same], at[same]
            rows.times[chosen] = batch.times[at]
            rows.y_pred[chosen] = batch.y[at]
            if rows.proba is not None and batch.proba is not None:
                rows.proba[chosen] = batch.proba[at]
            rows.runs[chosen] = run or ""
            rows.found[chosen] = True

    async def _from_joined(
        self, wanted: np.ndarray, slots: np.ndarray, ids: np.ndarray, rows: _Rows
    ) -> None:
        """The predictions and current labels of labelled ids, from their joined rows."""
        index = self.state.index
        jseqs = index.jseq[slots[wanted]]
        for jseq in np.unique(jseqs).tolist():
            joined = await self._joined(int(jseq))
            if joined is None:
                continue
            chosen = wanted[jseqs == jseq]
            at = index.jrow[slots[chosen]]
            same = joined.ids[at] == ids[chosen]
            chosen, at = chosen[same], at[same]
            rows.times[chosen] = joined.times[at]
            rows.y_pred[chosen] = joined.y_pred[at]
            if rows.proba is not None and joined.proba is not None:
                rows.proba[chosen] = joined.proba[at]
            rows.runs[chosen] = joined.runs[at]
            rows.old_y[chosen] = joined.y_true[at]
            rows.old_times[chosen] = joined.label_times[at]
            rows.found[chosen] = True

    async def _labels_to_runs(
        self, seq: int, plus: Part, minus: Part, plus_runs: np.ndarray, minus_runs: np.ndarray
    ) -> None:
        """The same rows' contributions to the documents of their predictions' drift runs (a
        run deleted meanwhile gets none)."""
        with_plus, with_minus = plus_runs != "", minus_runs != ""
        if not with_plus.any() and not with_minus.any():
            return
        parts = [
            dataclasses.replace(plus.take(with_plus), keys=plus_runs[with_plus]),
            dataclasses.replace(minus.take(with_minus), keys=minus_runs[with_minus]),
        ]
        inc, lag_max = await asyncio.to_thread(
            increments, parts, self.regression, self.classes, self.shift
        )
        created = await drifts.created_times(self.db, self.experiment_id, sorted(inc))
        await repository.add_to_runs(
            self.db, self.experiment_id, self.model, inc, created, lag_max, seq=seq
        )

    # --- a recount (recount.py) ------------------------------------------------------------

    async def recount(self) -> Totals:
        """The sums of every stored batch up to the last applied: predictions as recorded,
        and each id's current label with its prediction (its newest joined row)."""
        totals = Totals()
        latest = IdIndex()
        fields = {"kind": 1, "seq": 1, "ids": 1, "data": 1, "dups": 1, "run": 1, "jids": 1}
        async for doc in stored.read(self.db, self.key, 0, self.applied, fields):
            seq = int(doc["seq"])
            if doc["kind"] == "p":
                batch = await asyncio.to_thread(
                    decode_predictions, doc["ids"], doc["data"], self.regression, len(self.classes)
                )
                new = np.ones(len(batch.ids), dtype=bool)
                new[np.frombuffer(doc.get("dups") or b"", dtype="<i4")] = False
                totals.add_predictions(batch, new, doc.get("run"), self.classes)
            elif doc.get("jids") is not None:
                hashes = hash_ids(await asyncio.to_thread(read_ids, doc["jids"]))
                slots = latest.lookup(hashes)
                missing = slots < 0
                slots[missing] = latest.add(
                    hashes[missing], -1, np.full(int(missing.sum()), -1, dtype=np.int32)
                )
                latest.label(slots, seq, np.arange(len(hashes), dtype=np.int32))
        jseq, jrow = latest.jseq[: latest.size], latest.jrow[: latest.size]
        for seq in np.unique(jseq).tolist():
            joined = await self._joined(int(seq))
            if joined is None:
                continue
            rows = joined.take(np.sort(jrow[jseq == seq]))
            part = Part(
                hour_keys(rows.times),
                rows.y_pred,
                rows.y_true,
                rows.proba,
                lags(rows.times, rows.label_times),
                1,
                np.ones(len(rows.ids), dtype=bool),
            )
            await asyncio.to_thread(totals.add_labels, part, rows.runs, self)
        return totals


@dataclass
class Totals:
    """A recount's sums, flattened: per hour and per drift run, the prediction side and
    the label side."""

    predicted: dict[int, dict[str, float | int]] = field(default_factory=dict)
    labelled: dict[int, dict[str, float | int]] = field(default_factory=dict)
    run_predicted: dict[str, dict[str, float | int]] = field(default_factory=dict)
    run_labelled: dict[str, dict[str, float | int]] = field(default_factory=dict)
    n_predictions: int = 0
    n_labelled: int = 0

    def add_predictions(
        self, batch: Predictions, new: np.ndarray, run: str | None, classes: list[str]
    ) -> None:
        y = batch.y[new]
        proba = None if batch.proba is None else batch.proba[new]
        _sum_into(
            self.predicted, prediction_increments(hour_keys(batch.times[new]), y, proba, classes)
        )
        if run and len(y):
            whole = np.zeros(len(y), dtype=np.int64)
            counted = prediction_increments(whole, y, proba, classes)
            _sum_into(self.run_predicted, {run: counted[0]})
        self.n_predictions += len(y)

    def add_labels(self, part: Part, runs: np.ndarray, model: Applier) -> None:
        found = increments([part], model.regression, model.classes, model.shift)
        _sum_into(self.labelled, *found)
        with_run = runs != ""
        if with_run.any():
            by_run = dataclasses.replace(part.take(with_run), keys=runs[with_run])
            _sum_into(
                self.run_labelled,
                *increments([by_run], model.regression, model.classes, model.shift),
            )
        self.n_labelled += len(part.keys)


def _sum_into(
    totals: dict[Any, dict[str, float | int]],
    found: dict[Any, dict[str, float | int]],
    lag_max: dict[Any, float] | None = None,
) -> None:
    for key, inc in found.items():
        total = totals.setdefault(key, {})
        for path, value in inc.items():
            total[path] = total.get(path, 0) + value
        if lag_max is not None:
            total["lag_max"] = max(float(total.get("lag_max", 0.0)), lag_max.get(key, 0.0))


@dataclass
class _Rows:
    """The predictions (and current labels) gathered for a label batch's rows."""

    times: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    runs: np.ndarray
    old_y: np.ndarray
    old_times: np.ndarray
    found: np.ndarray


async def apply_stale(db: Database) -> list[str]:
    """Apply the batches dead appliers left (the workers' performance tick); the models."""
    done = []
    for doc in await repository.stale_models(db):
        model_doc = await repository.get_model(db, doc["experiment_id"], doc["model"])
        if model_doc is None:
            continue
        try:
            async with session(db, model_doc):
                pass
        except ServiceUnavailable:
            continue  # a live applier took it meanwhile
        done.append(model_doc["_id"])
    return done
