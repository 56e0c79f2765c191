"""Pages over plain HTTP (no browser) against the same-origin stack: keyset paging, the
asset allow-list, the dispatcher's split, friendly errors; and the package boundary."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from drift_dashboard.pages.account import client_snippet
from drift_dashboard.pages.experiments import decode_cursor, relative_time

from tests.dashboard.conftest import Stack, unique

PACKAGE = Path(__file__).resolve().parents[2] / "frontend" / "drift_dashboard"
ROW = re.compile(r'<th scope="row"><a href="/experiments/[^"]+">([^<]+)</a>')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
PREV = re.compile(r'<a href="([^"]+)" rel="prev">')


@pytest.fixture
def http(stack: Stack) -> httpx2.Client:
    return httpx2.Client(base_url=stack.url, timeout=30)


def _walk(http: httpx2.Client, url: str, link: re.Pattern[str] = NEXT) -> list[list[str]]:
    """Each page's rows, following ``link`` (next, or prev) from ``url`` until it is gone."""
    pages: list[list[str]] = []
    while url:
        response = http.get(url.replace("&amp;", "&"))
        assert response.status_code == 200, response.text
        pages.append(ROW.findall(response.text))
        found = link.search(response.text)
        url = found.group(1) if found else ""
    return pages


def _last_page_url(http: httpx2.Client, url: str) -> str:
    while True:
        found = NEXT.search(http.get(url.replace("&amp;", "&")).text)
        if found is None:
            return url
        url = found.group(1)


@pytest.mark.parametrize("sort", ["name", "newest"])
def test_keyset_pages_cover_every_row_once(stack: Stack, http: httpx2.Client, sort: str) -> None:
    prefix = unique("kp")
    token = stack.token("alice")
    with httpx2.Client(
        base_url=f"{stack.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        assert api.post("/user").status_code in (201, 409)
        made = []
        for i in range(43):
            name = f"{prefix}-{i:02d}"
            assert api.post("/experiment", json={"name": name, "public": True}).status_code == 201
            made.append(name)
    # Anonymous: public experiments, searched by name prefix.
    first = f"/experiments?q={prefix}&sort={sort}"
    pages = _walk(http, first)
    assert [len(page) for page in pages] == [20, 20, 3]
    rows = [name for page in pages for name in page]
    assert sorted(rows) == made
    assert rows == (made if sort == "name" else made[::-1])
    # "Previous page" (keyset backward, before=) from the last page gives the same pages.
    assert 'rel="prev"' not in http.get(first).text
    back = _walk(http, _last_page_url(http, first), PREV)
    assert back == pages[::-1]


def test_a_bad_cursor_is_the_first_page(http: httpx2.Client) -> None:
    assert decode_cursor("%%%") is None
    assert decode_cursor("WzEsMl0") is None  # [1,2]: not strings
    assert http.get("/experiments?after=garbage").status_code == 200


def test_vendor_assets_only_from_the_allow_list(http: httpx2.Client) -> None:
    htmx = http.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200
    assert htmx.headers["content-type"].startswith("text/javascript")
    assert http.get("/static/vendor/uPlot.min.css").status_code == 200
    for path in (
        "/static/vendor/package.json",
        "/static/vendor/..%2Fpackage.json",
        "/static/vendor/htmx.org/dist/htmx.js",
        "/static/",
        "/static/vendor/",
    ):
        assert http.get(path).status_code == 404, path
    assert http.get("/static/app.js").status_code == 200


def test_one_origin_for_api_and_dashboard(http: httpx2.Client) -> None:
    ready = http.get("/health/ready")
    assert ready.headers["content-type"].startswith("application/json")
    api = http.post("/api/v1/experiment/search", json={})
    assert api.status_code == 200
    assert "content-security-policy" not in api.headers  # the API is not a page
    home = http.get("/")
    assert home.status_code == 302
    assert home.headers["location"] == "/experiments"


def test_a_missing_experiment_is_a_friendly_page(http: httpx2.Client) -> None:
    response = http.get("/experiments/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert http.get("/no/such/page").status_code == 404


def test_the_client_snippet_points_at_this_server() -> None:
    snippet = client_snippet("https://drift.example.org")
    assert "export DRIFT_MONITOR_URL=https://drift.example.org" in snippet
    assert "with DriftMonitor(" in snippet


def test_the_dashboard_imports_nothing_of_the_backend() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "drift_backend" for n in names), path


def test_invalid_parameters_are_a_friendly_422(http: httpx2.Client) -> None:
    response = http.get("/experiments", params={"q": "x" * 500})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "Invalid request" in response.text


def _row(html: str, name: str) -> str:
    (row,) = [part for part in html.split("<tr>") if f">{name}</a>" in part]
    return row.split("</tr>")[0]


def test_each_row_shows_the_last_run_its_state_and_whether_it_drifted(
    stack: Stack, http: httpx2.Client
) -> None:
    prefix = unique("last")
    names = {key: f"{prefix}-{key}" for key in ("drifted", "running", "calm", "empty")}
    token = stack.token("alice")
    with httpx2.Client(
        base_url=f"{stack.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        assert api.post("/user").status_code in (201, 409)
        ids = {}
        for key, name in names.items():
            made = api.post("/experiment", json={"name": name, "public": True})
            ids[key] = made.json()["id"]

        def run(key: str, **body: object) -> None:
            made = api.post(f"/experiment/{ids[key]}/drift", json={"model": "m", **body})
            assert made.status_code == 201, made.text

        run("drifted", job_status="Completed", drift_detected=True)
        run("running", job_status="Completed", drift_detected=True)
        run("running", job_status="Running")  # the last one: not finished yet
        run("calm", job_status="Failed", error={"type": "E", "message": "x"})
        run("calm", job_status="Completed")
    html = http.get("/experiments", params={"q": prefix}).text
    drifted = _row(html, names["drifted"])
    assert "status-completed" in drifted
    assert '<span class="badge drifted">Yes</span>' in drifted
    assert "just now" in drifted  # relative, beside the absolute time
    assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d</time>', drifted)
    running = _row(html, names["running"])
    assert "status-running" in running
    assert "not yet" in running
    calm = _row(html, names["calm"])
    assert "status-completed" in calm
    assert '<span class="badge ok">No</span>' in calm
    assert "No runs" in _row(html, names["empty"])


def test_relative_times() -> None:
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    ago = {
        timedelta(seconds=5): "just now",
        timedelta(minutes=3): "3 min ago",
        timedelta(hours=5, minutes=59): "5 h ago",
        timedelta(days=1): "1 day ago",
        timedelta(days=9): "9 days ago",
        timedelta(days=800): "2 years ago",
    }
    for delta, text in ago.items():
        assert relative_time((now - delta).isoformat(), now) == text
    assert relative_time("not a time", now) == ""
