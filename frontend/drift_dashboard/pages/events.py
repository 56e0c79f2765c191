"""``GET /events``: the backend's event stream, relayed to the browser through our origin.

``EventSource`` cannot send a bearer token, so the browser asks us and we ask the backend with
the session's token (refreshed first when due, as for every page); an anonymous visitor's
stream goes without one and carries public experiments' events only. The backend checks the
read permission of every event, so nothing here filters. ``experiment`` filters and the
reconnect position (the ``Last-Event-ID`` header ``EventSource`` sends, or the
``last_event_id`` query a fresh ``EventSource`` can carry) are passed on as given; the backend
validates them.

Refusals are short JSON answers in the API's error shape (``EventSource`` only looks at the
status): 401 when the backend no longer accepts the login (the session ends, as on pages),
503 with ``Retry-After`` when the backend serves as many streams as it will, the backend's
404/422 as they are, anything else 502.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import JSONResponse, Response

from drift_dashboard.api import ApiError, error_message
from drift_dashboard.deps import ApiDep, ContextDep, SessionDep
from drift_dashboard.relay import RelayResponse

router = APIRouter()

#: Statuses passed to the browser as the backend gave them.
PASSED_ON = {400, 403, 404, 422}
#: How long to tell the browser to wait when the backend gave no ``Retry-After``.
RETRY_AFTER_SECONDS = "5"


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"code": {401: "unauthorized", 503: "unavailable"}.get(status, "error")}
    return JSONResponse(
        {**body, "status": status, "message": message},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@router.get("/events", response_model=None)
async def relay_events(
    context: ContextDep,
    session: SessionDep,
    api: ApiDep,
    experiment: Annotated[list[str] | None, Query(max_length=4096)] = None,
    last_event_id: Annotated[str | None, Query(max_length=32)] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=32)
    ] = None,
) -> Response:
    assert context.backend is not None
    params = [("experiment", value) for value in experiment or []]
    if last_event_id is not None:
        params.append(("last_event_id", last_event_id))
    headers = {}
    if last_event_id_header is not None:  # the backend prefers it over the query, as we do
        headers["Last-Event-ID"] = last_event_id_header
    try:
        upstream = await context.backend.open_stream(
            "/events", api.token, params=params, headers=headers
        )
    except ApiError as exc:
        return _refusal(503, exc.detail, {"Retry-After": RETRY_AFTER_SECONDS})
    if upstream.status_code == 200:
        return RelayResponse(upstream)
    try:
        await upstream.aread()
    finally:
        await upstream.aclose()
    message = error_message(upstream)
    if upstream.status_code == 401:
        if session.user is not None:
            session.end()  # the backend refuses this login: as on pages, it is over
        return _refusal(401, "Your login is no longer accepted; reload the page to log in.")
    if upstream.status_code == 503:
        retry = upstream.headers.get("retry-after", RETRY_AFTER_SECONDS)
        return _refusal(
            503, f"Live updates are busy; try again shortly ({message}).", {"Retry-After": retry}
        )
    if upstream.status_code in PASSED_ON:
        return _refusal(upstream.status_code, message)
    return _refusal(502, f"the backend answered {upstream.status_code}: {message}")
