"""A table posted as an Arrow stream to a performance route, answered 200 (the tests' one
way to send predictions, labels and references through the real API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream

if TYPE_CHECKING:
    from tests.conftest import Api


async def post_table(api: Api, url: str, table: pa.Table, model: str, user: str = "alice") -> Any:
    r = await api.request(
        "POST",
        url,
        user,
        params={"model": model},
        content=arrow_stream(table),
        headers={"Content-Type": ARROW_STREAM},
    )
    assert r.status_code == 200, r.text
    return r.json()
