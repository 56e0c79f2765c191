"""Server-Sent Events on the wire: frames, and a streaming response that can be cut short.

Starlette's ``StreamingResponse`` waits for each ``send``; to a client that stopped reading,
a send waits for ever (the server's write buffer is full). :class:`EventStreamResponse`
races every send against ``abort`` (the stream's subscriber fell too far behind) and the
client's disconnect, so a stuck client is let go instead of pinning its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
PING = b": ping\n\n"
#: How long a step that was cut short gets to unwind.
UNWIND_SECONDS = 1.0
#: How long the end of an answer may wait for a client that stopped reading.
FINISH_SECONDS = 10.0


def frame(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """One event: ``id:``, ``event:`` and one ``data:`` line of compact JSON (which never
    holds a raw newline, so one line is always enough)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id}\nevent: {event_type}\ndata: {body}\n\n".encode()


def retry_hint(milliseconds: int) -> bytes:
    """How long ``EventSource`` waits before reconnecting after the stream ends."""
    return f"retry: {milliseconds}\n\n".encode()


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class EventStreamResponse(StreamingResponse):
    """Streams ``frames``; stops when they end, the client goes, or ``abort`` is set
    (then the connection is closed without finishing the answer). ``on_close`` runs last,
    whatever happened."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        abort: asyncio.Event,
        on_close: Callable[[], None],
    ) -> None:
        super().__init__(
            frames,
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.frames = frames
        self.abort = abort
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_until_disconnect(receive))
        aborted = asyncio.ensure_future(self.abort.wait())
        iterator = aiter(self.frames)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while True:
                following = asyncio.ensure_future(anext(iterator))
                if not await self._race(following, gone, aborted):
                    return
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    break
                sending = asyncio.ensure_future(
                    send({"type": "http.response.body", "body": chunk, "more_body": True})
                )
                if not await self._race(sending, gone, aborted):
                    return
                sending.result()
            if self.abort.is_set():
                return
            closing = asyncio.ensure_future(send({"type": "http.response.body", "body": b""}))
            bound = asyncio.ensure_future(asyncio.sleep(FINISH_SECONDS))
            try:
                await self._race(closing, gone, bound)
            finally:
                bound.cancel()
        except OSError:  # the client went away mid-send
            return
        finally:
            gone.cancel()
            aborted.cancel()
            with contextlib.suppress(Exception):
                await iterator.aclose()  # type: ignore[attr-defined]
            self.on_close()

    @staticmethod
    async def _race(work: asyncio.Future[Any], *stops: asyncio.Future[Any]) -> bool:
        """True when ``work`` finished before any of ``stops``; else it is cancelled."""
        done, _ = await asyncio.wait({work, *stops}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            return True
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(work, UNWIND_SECONDS)
        return False
