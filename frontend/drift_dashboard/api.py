"""The backend REST client: one ``httpx2.AsyncClient`` per app, a bearer token per call.

Every non-2xx answer becomes :class:`ApiError` with the backend's status and message (its one
JSON error shape), so pages can show a friendly 403/404 page instead of a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

API_PREFIX = "/api/v1"


class ApiError(Exception):
    def __init__(
        self, status: int, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        self.status = status
        self.detail = detail
        #: A 422's ``errors``: ``{field, reason}`` each, so a form can show them beside itself.
        self.errors = errors or []
        super().__init__(f"backend answered {status}: {detail}")


class BackendClient:
    """Owns the connection pool to the backend; :meth:`bind` gives a per-caller view."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.http = httpx2.AsyncClient(base_url=base_url + API_PREFIX, timeout=timeout)
        # Event streams get a pool of their own: each holds its connection for as long as a
        # browser watches, and must never starve the page calls of connections. No read
        # timeout (an idle stream is normal; the backend pings it); the backend bounds how
        # many streams it serves (503).
        self.streams = httpx2.AsyncClient(
            base_url=base_url + API_PREFIX,
            timeout=httpx2.Timeout(timeout, read=None),
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=0),
        )

    def bind(self, token: str | None) -> Api:
        return Api(self.http, token)

    async def open_stream(
        self,
        path: str,
        token: str | None,
        *,
        params: Sequence[tuple[str, str]],
        headers: dict[str, str],
    ) -> httpx2.Response:
        """A streamed GET (its body not read yet): the caller reads and closes it. A backend
        that cannot be reached is an :class:`ApiError` 503, as for page calls."""
        headers = {"Accept": "text/event-stream", **headers}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        query = httpx2.QueryParams(tuple(params))
        request = self.streams.build_request("GET", path, params=query, headers=headers)
        try:
            return await self.streams.send(request, stream=True)
        except httpx2.HTTPError as exc:
            raise ApiError(503, f"the backend could not be reached ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.streams.aclose()


@dataclass
class Page:
    """One page of a search and the backend's ``X-Pagination`` header, parsed."""

    items: list[dict[str, Any]]
    total: int
    has_next: bool


@dataclass
class Api:
    """The backend as one caller sees it: their token (or none, anonymous) on every call."""

    http: httpx2.AsyncClient
    token: str | None

    @property
    def anonymous(self) -> bool:
        return self.token is None

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = await self.http.request(method, path, headers=headers, **kwargs)
        except httpx2.HTTPError as exc:
            raise ApiError(503, f"the backend could not be reached ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, error_message(response), field_errors(response))
        return response

    async def get(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    async def get_or_none(self, path: str, **kwargs: Any) -> Any:
        """``get``, with None for a 404 (what pages show as "nothing here")."""
        try:
            return await self.get(path, **kwargs)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = await self.request("POST", path, json=body, **kwargs)
        return response.json() if response.content else None

    async def search(self, path: str, query: dict[str, Any] | None, **params: Any) -> Page:
        response = await self.request("POST", path, json=query, params=params)
        meta = json.loads(response.headers.get("x-pagination") or "{}")
        return Page(
            items=list(response.json()),
            total=int(meta.get("total", 0)),
            has_next="next_page" in meta,
        )


def error_message(response: httpx2.Response) -> str:
    """The backend's message of an error answer (its body read)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return response.reason_phrase


def field_errors(response: httpx2.Response) -> list[dict[str, str]]:
    """The ``errors`` of an error answer (a 422's fields and reasons), else none."""
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(found, list):
        return []
    return [
        {"field": str(item.get("field", "")), "reason": str(item.get("reason", ""))}
        for item in found
        if isinstance(item, dict)
    ]
