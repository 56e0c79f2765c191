"""The run page shows the model performance of the predictions recorded with the run
(docs/performance.md, "Metrics per drift run"): in Chromium against the same-origin stack,
its table holds the API's values, the coverage and the provisional mark; a run without
predictions shows no such section, without asking the backend for one (the backend's own
HTTP metrics count the requests); no CSP complaint, no serious axe-core finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import numpy as np
import pyarrow as pa
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream
from drift_dashboard.pages import performance_tables as tables

from tests.dashboard.conftest import Stack, Visitor, unique


def _api(stack: Stack) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    return httpx2.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=60)


def _upload(api: httpx2.Client, path: str, params: dict[str, str], columns: dict[str, Any]) -> None:
    body = arrow_stream(pa.table(columns))
    made = api.post(path, params=params, content=body, headers={"Content-Type": ARROW_STREAM})
    assert made.status_code == 200, made.text


def _performance_asked(stack: Stack) -> float:
    """How often the backend answered ``GET .../drift/{id}/performance`` (its own HTTP
    metrics, any status)."""
    registry = stack.backend.state.metrics.http.registry
    route = "/api/v1/experiment/{experiment_id}/drift/{drift_id}/performance"
    return sum(
        registry.get_sample_value(
            "drift_monitor_http_requests_total", {"method": "GET", "route": route, "status": s}
        )
        or 0.0
        for s in ("200", "404")
    )


def test_the_run_page_shows_the_runs_performance(
    alice: Visitor, browser: Any, stack: Stack
) -> None:
    experiment = stack.create("alice", unique("runperf"))
    base = f"/experiment/{experiment['id']}"
    rng = np.random.default_rng(4)
    n = 100
    p1 = rng.uniform(0.02, 0.98, n).round(3)
    y_pred = (p1 >= 0.5).astype(np.int64)
    y_true = (rng.uniform(size=n) < p1).astype(np.int64)
    ids = [f"q{i}" for i in range(n)]
    start = datetime.now(UTC) - timedelta(hours=2)
    with _api(stack) as api:
        made = api.post(base + "/drift", json={"model": "clf", "job_status": "Running"})
        assert made.status_code == 201, made.text
        run_id = made.json()["id"]
        empty = api.post(base + "/drift", json={"model": "clf", "job_status": "Running"})
        assert empty.status_code == 201, empty.text
        _upload(
            api,
            base + "/predictions",
            {"model": "clf", "run": run_id},
            {
                "id": ids,
                "y_pred": y_pred,
                "proba_0": (1 - p1).round(3),
                "proba_1": p1,
                "time": pa.array(
                    [start + timedelta(seconds=i) for i in range(n)], pa.timestamp("ms", tz="UTC")
                ),
            },
        )
        # 60 % labelled: under the default 80 % coverage, so the run is provisional.
        _upload(
            api, base + "/ground-truth", {"model": "clf"}, {"id": ids[:60], "y_true": y_true[:60]}
        )
        answer = api.get(f"{base}/drift/{run_id}/performance").json()
    run = answer["run"]
    assert (run["n_predicted"], run["n_labelled"], run["complete"]) == (100, 60, False)

    page = f"/experiments/{experiment['id']}/runs/{run_id}"
    before = _performance_asked(stack)
    assert alice.goto(page).status == 200
    run_asked = _performance_asked(stack) - before
    section = alice.page.locator("section.run-performance")
    assert section.locator("h2").inner_text() == "Model performance"
    facts = section.locator("dl.facts").inner_text()
    assert "60 %" in facts
    assert "provisional" in facts
    cells = {}
    for row in section.locator("table.run-performance-table tbody tr").all():
        name = row.locator("th").inner_text()
        cells[name] = row.locator("td").first.get_attribute("data-value")
        assert "provisional" in (row.get_attribute("class") or "")
    for name, metric in run["metrics"].items():
        assert cells[name] == ("" if metric["value"] is None else tables.raw(metric["value"]))
    accuracy = float(np.mean(y_pred[:60] == y_true[:60]))
    assert float(cells["accuracy"] or "nan") == accuracy
    assert section.locator("table.run-confusion-table").count() == 1
    assert alice.csp_violations() == []
    # Accessible: axe-core (injected as an inline script, so in a context without the CSP).
    checker = Visitor(browser, stack, bypass_csp=True)
    try:
        checker.login("alice")
        assert checker.goto(page).status == 200
        assert checker.axe_serious() == []
    finally:
        checker.close()

    # A run without predictions has no performance section, and its page does not even ask
    # the backend for one (the run says it has none: ``has_predictions``).
    assert run_asked > 0
    asked = _performance_asked(stack)
    assert alice.goto(f"/experiments/{experiment['id']}/runs/{empty.json()['id']}").status == 200
    assert alice.page.locator("section.run-performance").count() == 0
    assert _performance_asked(stack) == asked
