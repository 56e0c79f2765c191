"""The experiment, run, baselines and permissions pages in a real browser (and with
JavaScript off) against a real stack with an embedded worker: runs made through the API, a
server-side check with its report, a grant through the permissions form."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import numpy as np
import pytest

from tests.dashboard.conftest import Stack, Visitor, unique

EMBEDDED_WORKER = True  # the check below runs on the server


@dataclass
class Seeded:
    experiment: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    check: dict[str, Any]
    baseline: dict[str, Any]

    @property
    def url(self) -> str:
        return f"/experiments/{self.experiment['id']}"


def _columns(seed: int, n: int, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(shift, 1.0, n).tolist(),
        "c": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]).tolist(),
    }


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    experiment = stack.create("alice", unique("pages"))
    base = f"/experiment/{experiment['id']}"
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    runs: dict[str, dict[str, Any]] = {}
    with httpx2.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=60) as api:

        def run(name: str, **body: Any) -> None:
            made = api.post(f"{base}/drift", json=body)
            assert made.status_code == 201, made.text
            runs[name] = made.json()

        run("ok", job_status="Completed", model="m1", tags=["nightly"])
        run(
            "drifted",
            job_status="Completed",
            model="m1",
            tags=["nightly", "eu"],
            concept_drift={"drift": True, "parameters": {"accuracy_drop": 0.12}},
            data_drift={"drift": False, "parameters": {"psi": 0.01}},
        )
        run(
            "failed",
            job_status="Failed",
            model="m2",
            error={"type": "ValueError", "message": "bad batch"},
        )
        run("running", job_status="Running", model="m2")
        made = api.post(
            f"{base}/baseline",
            params={"name": "train", "model": "m1"},
            json={"columns": _columns(1, 2000)},
        )
        assert made.status_code == 201, made.text
        baseline = made.json()
        checked = api.post(
            f"{base}/check",
            params={"model": "m1", "wait": 60},
            json={"columns": _columns(2, 800, shift=0.8)},
        )
        assert checked.status_code == 200, checked.text
        check = checked.json()
        assert check["job_status"] == "Completed", check
    return Seeded(experiment, runs, check, baseline)


@pytest.fixture
def alice_without_js(browser: Any, stack: Stack) -> Iterator[Visitor]:
    visitor = Visitor(browser, stack, javascript=False)
    visitor.login("alice")
    yield visitor
    visitor.close()


def _run_rows(visitor: Visitor) -> list[str]:
    rows: list[str] = visitor.page.locator("#runs table.runs-table tbody tr").all_inner_texts()
    return rows


def test_experiment_page_lists_runs_and_filters_by_status_in_the_url(
    alice: Visitor, seeded: Seeded
) -> None:
    alice.goto(seeded.url)
    assert len(_run_rows(alice)) == len(seeded.runs) + 1  # the client's runs and the check
    alice.page.get_by_label("Status").select_option("Failed")
    alice.page.get_by_role("button", name="Apply").click()
    alice.page.wait_for_url(re.compile(r".*status=Failed.*"))
    assert parse_qs(urlsplit(alice.page.url).query)["status"] == ["Failed"]
    rows = _run_rows(alice)
    assert len(rows) == 1
    assert "Failed" in rows[0]
    assert "m2" in rows[0]
    # The form keeps the filter, and a reload of the URL shows the same rows.
    assert alice.page.get_by_label("Status").input_value() == "Failed"
    alice.page.reload()
    assert len(_run_rows(alice)) == 1
    # Tags (all must match) and model filter together.
    alice.goto(f"{seeded.url}?tags=nightly,eu&model=m1")
    rows = _run_rows(alice)
    assert len(rows) == 1
    assert "eu" in rows[0]
    assert alice.csp_violations() == []


def test_each_chart_is_a_section_with_a_data_url_and_numbers_or_a_notice(
    alice: Visitor, seeded: Seeded
) -> None:
    response = alice.goto(seeded.url)
    assert response.status == 200
    for kind in ("timeline", "feature", "heatmap", "violations"):
        section = alice.page.locator(f'section.chart[data-chart="{kind}"]')
        assert section.get_attribute("data-url").startswith(f"{seeded.url}/charts/{kind}.json")
        text = section.inner_text()
        has_table = section.locator("table").count() > 0
        if has_table:  # its data-url answers the same numbers as JSON, through our origin
            data = alice.context.request.get(alice.stack.url + section.get_attribute("data-url"))
            assert data.status == 200
            assert isinstance(data.json(), dict)
        # Without the backend's chart routes the page still renders, saying so.
        assert has_table or "not available" in text or "No " in text, (kind, text)
    # Where the backend has the chart routes: the numbers are the runs', and drawn.
    timeline = alice.page.locator('section[data-chart="timeline"] table')
    if timeline.count():
        cells = timeline.locator("tbody td").all()
        assert sum(int(td.get_attribute("data-value") or 0) for td in cells) == len(seeded.runs) + 1
        alice.page.locator('section[data-chart="timeline"] canvas').first.wait_for()
        csv = alice.context.request.get(
            alice.stack.url
            + alice.page.locator("#chart-timeline a[download]").get_attribute("href")
        )
        assert csv.status == 200
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text().splitlines()[0].startswith("start,drifted")
    heatmap = alice.page.locator("table.heatmap-table")
    if heatmap.count():
        runs = heatmap.locator("thead th[data-run]").count()
        features = heatmap.locator("tbody tr").count()
        assert runs >= 1
        assert features == 2  # x and c
        assert alice.page.locator(".hm-grid .hm-cell").count() == runs * features
        assert alice.page.locator(".hm-grid .hm-cell.hm-4").count() >= 1  # x drifted
    live = alice.page.locator("[sse-connect]")
    assert live.get_attribute("sse-connect") == f"/events?experiment={seeded.experiment['id']}"
    assert alice.csp_violations() == []


def test_a_check_report_has_the_feature_table_and_a_histogram(
    alice: Visitor, seeded: Seeded
) -> None:
    alice.goto(seeded.url)
    alice.page.locator(f'#runs a[href="{seeded.url}/runs/{seeded.check["id"]}"]').click()
    alice.page.wait_for_url(f"**/runs/{seeded.check['id']}")
    table = alice.page.locator("table.report-table")
    features = table.locator("tbody th").all_inner_texts()
    assert sorted(features) == ["c", "x"]
    headers = " ".join(table.locator("thead th").all_inner_texts())
    for column in ("Test", "Statistic", "p-value", "Adjusted p-value", "Threshold", "Drifted"):
        assert column in headers
    # x was shifted by 0.8 standard deviations: drifted, and the histogram shows it first.
    assert "yes" in table.locator("tbody tr", has_text="x").inner_text()
    histogram = alice.page.locator("#histogram")
    histogram.locator("canvas").first.wait_for()
    assert "x" in histogram.locator("h3").inner_text()
    assert histogram.locator("table.histogram-table tbody tr").count() >= 3
    # Choosing another feature (a GET form) draws that one.
    alice.page.get_by_label("Feature").select_option("c")
    alice.page.get_by_role("button", name="Show").click()
    alice.page.wait_for_url(re.compile(r".*feature=c.*"))
    assert histogram.locator("table.histogram-table tbody tr").count() == 3
    histogram.locator("canvas").first.wait_for()
    assert alice.csp_violations() == []


def test_without_javascript_the_runs_and_the_run_render_their_data(
    alice_without_js: Visitor, seeded: Seeded
) -> None:
    visitor = alice_without_js
    assert visitor.goto(seeded.url).status == 200
    rows = _run_rows(visitor)
    assert len(rows) == len(seeded.runs) + 1
    assert any("Failed" in row for row in rows)
    # The filter form and paging are plain links and GET forms.
    visitor.page.get_by_label("Model").fill("m2")
    visitor.page.get_by_role("button", name="Apply").click()
    visitor.page.wait_for_url(re.compile(r".*model=m2.*"))
    assert len(_run_rows(visitor)) == 2
    # The client's run: concept and data drift apart, with their parameters.
    visitor.goto(f"{seeded.url}/runs/{seeded.runs['drifted']['id']}")
    concept = visitor.page.locator('section[aria-label="Concept drift"]').inner_text()
    data = visitor.page.locator('section[aria-label="Data drift"]').inner_text()
    assert "Drift detected" in concept
    assert "accuracy_drop" in concept
    assert "No drift" in data
    assert "psi" in data
    visitor.goto(f"{seeded.url}/runs/{seeded.runs['failed']['id']}")
    assert "bad batch" in visitor.page.locator('[role="alert"]').inner_text()
    # The check's report and its histogram table.
    visitor.goto(f"{seeded.url}/runs/{seeded.check['id']}")
    assert visitor.page.locator("table.report-table tbody tr").count() == 2
    assert visitor.page.locator("table.histogram-table tbody tr").count() >= 3
    assert visitor.page.locator("#histogram canvas").count() == 0  # nothing drawn, data there


def test_baselines_list_summary_and_sagemaker_downloads(alice: Visitor, seeded: Seeded) -> None:
    alice.goto(seeded.url)
    alice.page.get_by_role("link", name="Baselines").click()
    alice.page.get_by_role("link", name="train", exact=True).click()
    summary = alice.page.locator("table.data tbody").inner_text()
    assert "x" in summary
    assert "c" in summary
    link = alice.page.get_by_role("link", name="statistics.json")
    with alice.page.expect_download() as download_info:
        link.click()
    path = download_info.value.path()
    statistics = json.loads(Path(path).read_text(encoding="utf-8"))
    assert {f["name"] for f in statistics["features"]} == {"x", "c"}
    response = alice.context.request.get(
        f"{alice.stack.url}{seeded.url}/baselines/{seeded.baseline['id']}/constraints.json"
    )
    assert response.status == 200
    assert "features" in response.json()


def test_grant_read_on_the_permissions_page_then_that_user_finds_it(
    browser: Any, stack: Stack
) -> None:
    experiment = stack.create("alice", unique("shared"))
    url = f"/experiments/{experiment['id']}"
    alice = Visitor(browser, stack)
    bob = Visitor(browser, stack)
    try:
        bob.login("bob")  # registers bob, so his email can be granted
        assert bob.goto(url).status == 404
        alice.login("alice")
        alice.goto(url)
        alice.page.get_by_role("link", name="Permissions").click()
        alice.page.get_by_label("Email, entitlement or user id").fill("bob@example.org")
        alice.page.get_by_label("Level", exact=True).select_option("Read")
        alice.page.get_by_role("button", name="Give access").click()
        alice.page.wait_for_url(f"**{url}/permissions?done=added")
        assert "Access granted" in alice.page.locator('[role="status"]').inner_text()
        assert alice.page.locator("table.permissions-table tbody tr").count() == 2
        # An unknown email: the backend's reason, on the form, nothing added.
        alice.page.get_by_label("Email, entitlement or user id").fill("nobody@example.org")
        alice.page.get_by_role("button", name="Give access").click()
        assert "nobody@example.org" in alice.page.locator('[role="alert"]').inner_text()
        assert alice.page.locator("table.permissions-table tbody tr").count() == 2

        bob.goto("/experiments")
        names = bob.page.locator("table.data tbody th a").all_inner_texts()
        assert experiment["name"] in names
        assert bob.goto(url).status == 200
        # Read only: no permissions link, and the page itself is refused.
        assert bob.page.get_by_role("link", name="Permissions").count() == 0
        assert bob.goto(f"{url}/permissions").status == 403
        assert alice.csp_violations() == []
        assert bob.csp_violations() == []
    finally:
        alice.close()
        bob.close()


def test_permission_changes_through_the_forms(browser: Any, stack: Stack) -> None:
    experiment = stack.create("alice", unique("perm-forms"))
    url = f"/experiments/{experiment['id']}/permissions"
    alice = Visitor(browser, stack)
    try:
        alice.login("alice")
        alice.goto(url)
        alice.page.get_by_label("An entitlement").check()
        alice.page.get_by_label("Email, entitlement or user id").fill("urn:test:group:team-b")
        alice.page.get_by_label("Level", exact=True).select_option("Edit")
        alice.page.get_by_role("button", name="Give access").click()
        row = alice.page.locator("table.permissions-table tbody tr", has_text="team-b")
        assert "Edit" in row.inner_text()
        row.get_by_role("combobox").select_option("Manage")
        row.get_by_role("button", name="Change").click()
        alice.page.wait_for_url("**done=changed")
        row = alice.page.locator("table.permissions-table tbody tr", has_text="team-b")
        assert row.locator("td").first.inner_text() == "Manage"
        row.get_by_role("button", name="Remove").click()
        alice.page.wait_for_url("**done=removed")
        assert alice.page.locator("table.permissions-table tbody tr").count() == 1
        # The last Manage entry cannot go: the backend's 409, shown on the page.
        alice.page.get_by_role("button", name="Remove").click()
        assert alice.page.locator('[role="alert"]').count() == 1
        assert alice.page.locator("table.permissions-table tbody tr").count() == 1
        # Public and back.
        alice.page.get_by_role("button", name="Make public").click()
        alice.page.wait_for_url("**done=public")
        anonymous = httpx2.get(f"{stack.url}/experiments/{experiment['id']}", timeout=30)
        assert anonymous.status_code == 200
        alice.page.get_by_role("button", name="Make private").click()
        alice.page.wait_for_url("**done=private")
        anonymous = httpx2.get(f"{stack.url}/experiments/{experiment['id']}", timeout=30)
        assert anonymous.status_code == 404
    finally:
        alice.close()


def test_an_administrator_manages_without_an_entry(
    browser: Any, stack: Stack, seeded: Seeded
) -> None:
    before = seeded.experiment["updated_at"]
    admin = Visitor(browser, stack)
    try:
        admin.login("admin")
        assert admin.goto(f"{seeded.url}/permissions").status == 200
        assert admin.page.get_by_role("button", name="Give access").count() == 1
    finally:
        admin.close()
    # Asking the backend (an empty PATCH) changed nothing.
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    now = httpx2.get(
        f"{stack.url}/api/v1/experiment/{seeded.experiment['id']}", headers=headers, timeout=30
    )
    assert now.json()["updated_at"] == before


def test_no_permissions_page_for_a_non_manager(stack: Stack, seeded: Seeded) -> None:
    # Anonymous: a login first; a public experiment's reader: refused.
    anonymous = httpx2.get(f"{stack.url}{seeded.url}/permissions", timeout=30)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    public = stack.create("bob", unique("bob-public"), public=True)
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        page = http.get(f"/experiments/{public['id']}")
        assert page.status_code == 200
        assert "/permissions" not in page.text


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_experiment_and_run_pages(
    browser: Any, stack: Stack, seeded: Seeded, scheme: str
) -> None:
    visitor = Visitor(browser, stack, bypass_csp=True)
    visitor.page.emulate_media(color_scheme=scheme)
    visitor.login("alice")
    try:
        for path in (
            seeded.url,
            f"{seeded.url}/runs/{seeded.check['id']}",
            f"{seeded.url}/runs/{seeded.runs['drifted']['id']}",
            f"{seeded.url}/baselines",
            f"{seeded.url}/permissions",
        ):
            visitor.goto(path)
            # The charts' tables sit in <details>: open them, so axe checks them too.
            visitor.page.evaluate(
                "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
            )
            bad = visitor.axe_serious()
            assert bad == [], f"{path} ({scheme}): {bad}"
    finally:
        visitor.close()


CLIENT_SCRIPT = """
from drift_monitor import DriftMonitor

with DriftMonitor(EXPERIMENT, "live-model", tags=["from-a-script"]) as monitor:
    monitor.data(True, {"psi": 0.31})
"""


def test_new_runs_appear_without_reloading(alice: Visitor, stack: Stack, tmp_path: Path) -> None:
    """Create an experiment in the browser, run a client script (the SDK) against it, and
    watch its run appear through the relay without reloading."""
    name = unique("live")
    alice.page.get_by_role("link", name="New experiment").click()
    alice.page.get_by_label("Name", exact=True).fill(name)
    alice.page.get_by_role("button", name="Create").click()
    alice.page.wait_for_url(f"{stack.url}/experiments/*")
    alice.wait_for_live_updates()
    assert _run_rows(alice) == []
    script = f"EXPERIMENT = {name!r}\n{CLIENT_SCRIPT}"
    env = {
        **os.environ,
        "DRIFT_MONITOR_URL": stack.url,
        "DRIFT_MONITOR_TOKEN": stack.token("alice"),
        "DRIFT_MONITOR_SPOOL_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    row = alice.page.locator("#runs tbody tr", has_text="live-model")
    row.wait_for()
    # The run started (Running) and finished: the table ends up showing it Completed.
    alice.page.locator("#runs tbody tr", has_text="Completed").wait_for()
    assert len(_run_rows(alice)) == 1
    assert alice.csp_violations() == []


def test_a_running_run_s_page_shows_it_finished_without_reloading(
    alice: Visitor, stack: Stack, seeded: Seeded
) -> None:
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    base = f"{stack.url}/api/v1/experiment/{seeded.experiment['id']}/drift"
    made = httpx2.post(base, json={"job_status": "Running", "model": "slow"}, headers=headers)
    assert made.status_code == 201
    run = made.json()
    alice.goto(f"{seeded.url}/runs/{run['id']}")
    alice.wait_for_live_updates()
    assert "Running" in alice.page.locator("h2").first.inner_text()
    finished = httpx2.put(
        f"{base}/{run['id']}",
        json={
            "job_status": "Completed",
            "model": "slow",
            "data_drift": {"drift": True, "parameters": {"psi": 0.4}},
        },
        headers=headers,
        timeout=30,
    )
    assert finished.status_code == 200
    alice.page.locator("h2", has_text="Completed").wait_for()
    assert "psi" in alice.page.locator('section[aria-label="Data drift"]').inner_text()
    assert alice.csp_violations() == []
