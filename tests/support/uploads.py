"""A table posted as an Arrow stream to a performance route (the tests' one way to send
predictions, labels and references through the real API): ``send_table`` gives the
response as it came, for the tests of bad input; ``post_table`` asserts it was accepted and
gives its body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import pyarrow as pa
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream

if TYPE_CHECKING:
    from tests.conftest import Api


async def send_table(
    api: Api, url: str, table: pa.Table, model: str, user: str = "alice", **params: Any
) -> httpx2.Response:
    """``params``: more query parameters (``run=`` of predictions)."""
    return await api.request(
        "POST",
        url,
        user,
        params={"model": model, **params},
        content=arrow_stream(table),
        headers={"Content-Type": ARROW_STREAM},
    )


async def post_table(
    api: Api, url: str, table: pa.Table, model: str, user: str = "alice", **params: Any
) -> Any:
    r = await send_table(api, url, table, model, user, **params)
    assert r.status_code == 200, r.text
    return r.json()
