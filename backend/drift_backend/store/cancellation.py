"""Background loops that ride out database outages must still stop when cancelled."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that an error handler caught in another exception's guise.

    PyMongo's async API can turn a ``CancelledError`` delivered during server selection into
    another error (seen: ``RuntimeError: Lock is not acquired``, when its condition wait is
    cancelled). A loop that catches errors to retry after an outage would then swallow the
    cancellation and never stop; call this first thing in such a handler.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
