"""``GET /events``: run and check events as Server-Sent Events, each one only to callers who
may read its experiment at that moment."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Collection
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pymongo.errors import PyMongoError

from drift_backend.api.deps import CallerDep, DbDep, SettingsDep
from drift_backend.api.responses import DESCRIPTIONS, REF
from drift_backend.auth.caller import Caller
from drift_backend.auth.permissions import Level
from drift_backend.errors import ValidationFailed
from drift_backend.events import repository, service
from drift_backend.events.access import ReadAccess
from drift_backend.events.hub import EventHub, Subscriber
from drift_backend.events.schemas import Event, EventType
from drift_backend.events.sse import MEDIA_TYPE, PING, EventStreamResponse, frame, retry_hint
from drift_backend.experiments.service import get_for
from drift_backend.settings import Settings
from drift_backend.store.database import Database

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])

#: Experiments one stream may be filtered to.
MAX_EXPERIMENTS = 100
#: What ``EventSource`` is told to wait before reconnecting, in milliseconds.
RETRY_MS = 1000


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its local ``$ref``s replaced by what they name (a self-contained
    schema, as the content of a media type needs)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inlined(value, defs) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _event_schema() -> dict[str, Any]:
    """One SSE block as OpenAPI 3.1 tools read a ``text/event-stream`` schema: its fields,
    ``data`` being the JSON of an :class:`Event`."""
    event = Event.model_json_schema()
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The event's number (decimal)."},
            "event": {"type": "string", "enum": [str(kind) for kind in EventType]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": _inlined(event, event.get("$defs", {})),
            },
            "retry": {"type": "integer", "minimum": 0},
        },
    }


STREAM_DOC = {
    "description": (
        "A `text/event-stream`: per event `id:` (its number), `event:` (its type) and one "
        "`data:` line of JSON (`Event`); `: ping` comments keep an idle stream alive."
    ),
    "content": {MEDIA_TYPE: {"schema": _event_schema()}},
}

#: Its errors are JSON, not the stream's media type that ``errors(404)`` would give them.
NOT_FOUND_DOC = {
    "description": DESCRIPTIONS[404],
    "content": {"application/json": {"schema": {"$ref": f"{REF}ErrorBody"}}},
}


def _experiment_ids(values: list[str] | None) -> list[str] | None:
    """``experiment`` may repeat and each may list ids separated by commas."""
    if not values:
        return None
    ids = list(dict.fromkeys(part.strip() for value in values for part in value.split(",")))
    ids = [item for item in ids if item]
    if not ids:
        raise ValidationFailed("experiment", "name at least one experiment id")
    if len(ids) > MAX_EXPERIMENTS:
        raise ValidationFailed("experiment", f"at most {MAX_EXPERIMENTS} experiments")
    return ids


def _event_number(field: str, value: str | int | None) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 19:
        raise ValidationFailed(field, "must be an event id this server sent (a decimal number)")
    return int(text)


def _token_deadline(caller: Caller, loop: asyncio.AbstractEventLoop) -> float | None:
    """The loop time at which the caller's token expires: the stream ends then, and the
    client reconnects with a fresh one (a stream never outlives its credentials)."""
    if caller.identity is None:
        return None
    expires = caller.identity.claims.get("exp")
    if not isinstance(expires, int | float):
        return None
    return loop.time() + (float(expires) - time.time())


def get_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.event_hub
    return hub


async def _frames(
    db: Database,
    settings: Settings,
    subscriber: Subscriber,
    frontier: int,
    access: ReadAccess,
    after: int | None,
    experiments: Collection[str] | None,
    follow: bool,
    deadline: float | None,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    keepalive = settings.events_keepalive_seconds
    yield retry_hint(RETRY_MS)
    try:
        last = frontier if after is None and follow else (after or 0)
        # What was kept after the client's last event, up to where the live queue starts.
        if last < frontier:
            async for doc in repository.between(db, last, frontier, experiments):
                last = doc["_id"]
                if await access.allows(doc["experiment_id"]):
                    yield frame(str(doc["_id"]), doc["type"], service.to_wire(doc))
        if not follow:
            return
        idle_until = loop.time() + keepalive
        while True:
            for doc in subscriber.take():
                if doc["_id"] <= last:  # seen in the replay, or before a reconnect elsewhere
                    continue
                last = doc["_id"]
                if await access.allows(doc["experiment_id"]):
                    yield frame(str(doc["_id"]), doc["type"], service.to_wire(doc))
                    idle_until = loop.time() + keepalive
            if subscriber.dropped.is_set():
                return
            now = loop.time()
            if deadline is not None and now >= deadline:
                return
            if now >= idle_until:
                yield PING
                idle_until = now + keepalive
                continue
            wake = idle_until if deadline is None else min(idle_until, deadline)
            await subscriber.wait(wake - now)
    except PyMongoError as error:  # the database went away: end; the client reconnects
        log.warning("event stream ended: the database is unavailable (%s)", error)


@router.get(
    "/events",
    status_code=200,
    response_class=EventStreamResponse,
    response_model=None,
    responses={200: STREAM_DOC, 404: NOT_FOUND_DOC},
)
async def stream_events(
    request: Request,
    caller: CallerDep,
    db: DbDep,
    settings: SettingsDep,
    experiment: Annotated[
        list[str] | None,
        Query(description="Only these experiments' events (repeat it, or separate by commas)."),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Query(description="Replay what came after this event (the header wins when both)."),
    ] = None,
    follow: Annotated[
        bool,
        Query(description="Keep the stream open for new events (false: replay, then end)."),
    ] = True,
    last_event_id_header: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Sent by EventSource when it reconnects."),
    ] = None,
) -> EventStreamResponse:
    """Run and check events as Server-Sent Events (`run.created`, `run.updated`,
    `run.finished`, `check.finished`), each only if the caller may read its experiment at
    that moment. A reconnect with `Last-Event-ID` replays what was missed and still kept,
    then goes live. Over the per-process limit of streams: 503 with `Retry-After`."""
    experiments = _experiment_ids(experiment)
    after = _event_number("Last-Event-ID", last_event_id_header)
    if after is None:
        after = _event_number("last_event_id", last_event_id)
    if experiments is not None:
        for experiment_id in experiments:  # 404, as its other read routes answer
            await get_for(db, experiment_id, caller, Level.Read)
    hub = get_hub(request)
    subscriber, frontier = await hub.subscribe(experiments, settings.mongodb_timeout_seconds)
    access = ReadAccess(db, caller, settings.events_permission_cache_seconds)
    frames = _frames(
        db,
        settings,
        subscriber,
        frontier,
        access,
        after,
        experiments,
        follow,
        _token_deadline(caller, asyncio.get_running_loop()),
    )
    return EventStreamResponse(
        frames, abort=subscriber.dropped, on_close=lambda: hub.unsubscribe(subscriber)
    )
