"""The ``feature_results`` queries of one model read an index, though no index has the model
(``store.database.INDEXES``): each keeps the model in a stage of its own, which SecantusDB
would otherwise plan as a collection scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.charts import feature_counts, queries
from drift_backend.charts.buckets import window
from drift_backend.store.database import Database, ensure_indexes

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _pipelines(model: str | None) -> dict[str, list[dict[str, Any]]]:
    runs = [{"_id": f"r{i}-m1", "created_at": NOW + timedelta(minutes=i)} for i in range(5)]
    pipelines = {
        "feature history": queries.feature_history_pipeline(
            "e", "f3", model, window(None, None, 30, NOW + timedelta(hours=1))
        ),
        "heatmap": queries.heatmap_pipeline("e", runs, 30),
    }
    if model is not None:
        pipelines["a 6 hours' recount"] = feature_counts.span_pipeline("e", model, NOW)
    return pipelines


@pytest.mark.parametrize("model", ["m1", None])
async def test_a_models_results_are_read_on_an_index(db: Database, model: str | None) -> None:
    await ensure_indexes(db)
    await db.feature_results.insert_many(
        [
            {
                "_id": f"r{r}-{m}:f{i}",
                "experiment_id": "e",
                "model": m,
                "run_id": f"r{r}-{m}",
                "feature": f"f{i}",
                "created_at": NOW + timedelta(minutes=r),
                "drifted": r % 2 == 0,
                "p_value": 0.5,
            }
            for r in range(10)
            for m in ("m1", "m2")
            for i in range(20)
        ]
    )
    for name, pipeline in _pipelines(model).items():
        explained = await db.command(
            "explain", {"aggregate": "feature_results", "pipeline": pipeline, "cursor": {}}
        )
        plan = str(explained)
        assert "IXSCAN" in plan, (name, plan)
        assert "COLLSCAN" not in plan, (name, plan)
        if model is not None:  # and the model's results alone
            rows = [row async for row in await db.feature_results.aggregate(pipeline)]
            assert rows, name
