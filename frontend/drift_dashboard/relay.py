"""Relaying the backend's event stream to the browser, chunk by chunk.

The browser's ``EventSource`` cannot send a bearer token, so the dashboard opens the
backend's ``GET /api/v1/events`` with the session's token and passes its bytes on as they
arrive: nothing is parsed or held back (an SSE frame split across chunks stays split; the
browser joins it). :class:`RelayResponse` races every step against the browser's
disconnect, so a browser that leaves closes the upstream stream at once instead of at the
next ping, and the backend's per-process stream slot is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx2
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MEDIA_TYPE = "text/event-stream"
#: No proxy (Traefik, nginx) or cache may hold the stream back.
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class RelayResponse(Response):
    """Streams ``upstream``'s body to the browser until either side ends; always closes
    ``upstream``."""

    media_type = MEDIA_TYPE

    def __init__(self, upstream: httpx2.Response) -> None:
        # Not Response.__init__: with a body (even an empty one) it would send
        # Content-Length: 0. Without one, the answer is chunked, as a stream must be.
        self.status_code = 200
        self.background = None
        self.init_headers(STREAM_HEADERS)
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_until_disconnect(receive))
        chunks: AsyncIterator[bytes] = aiter(self.upstream.aiter_raw())
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            while True:
                following = asyncio.ensure_future(anext(chunks))
                await asyncio.wait({following, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():  # the browser left while the stream was idle
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await following
                    return
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    break
                except httpx2.HTTPError:  # the backend went away: end; the browser reconnects
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # the browser went away mid-send
            return
        finally:
            gone.cancel()
            await self.upstream.aclose()
