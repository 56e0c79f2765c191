"""The experiment pages over plain HTTP (no browser, no JavaScript) against the same-origin
stack: runs paged by keyset through the "Older runs" links and back through "Newer runs",
filters kept in the URL, bad
filters explained instead of failing, the live-update fragment; and the pure helpers."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest
from drift_dashboard.pages.charts import cell_level, heatmap_grid, number
from drift_dashboard.pages.experiment import RunFilters, duration, runs_filter
from drift_dashboard.pages.runs import bin_labels, histogram_rows, pick_feature
from drift_dashboard.pages.scope import level_of

from tests.dashboard.conftest import Stack, unique

RUN_LINK = re.compile(r'<th scope="row"><a href="/experiments/[^/]+/runs/([^"]+)">')
OLDER = re.compile(r'<a href="([^"]+)" rel="next">Older runs</a>')
NEWER = re.compile(r'<a href="([^"]+)" rel="prev">Newer runs</a>')


@pytest.fixture(scope="module")
def public_runs(stack: Stack) -> tuple[dict[str, Any], list[str]]:
    """A public experiment with 30 runs made in a burst (several share a millisecond, so the
    keyset's tie-break on the id matters)."""
    experiment = stack.create("alice", unique("paged"), public=True)
    headers = {"Authorization": f"Bearer {stack.token('alice')}"}
    ids = []
    with httpx2.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=30) as api:
        for i in range(30):
            status = "Failed" if i % 10 == 0 else "Completed"
            body = {"job_status": status, "model": f"m{i % 3}", "tags": [f"t{i % 2}"]}
            made = api.post(f"/experiment/{experiment['id']}/drift", json=body)
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
    return experiment, ids


def _walk(http: httpx2.Client, url: str, link: re.Pattern[str] = OLDER) -> list[list[str]]:
    pages = []
    while url:
        response = http.get(url.replace("&amp;", "&"))
        assert response.status_code == 200, response.text
        pages.append(RUN_LINK.findall(response.text))
        found = link.search(response.text)
        url = found.group(1) if found else ""
    return pages


def _last_page_url(http: httpx2.Client, url: str) -> str:
    while True:
        found = OLDER.search(http.get(url.replace("&amp;", "&")).text)
        if not found:
            return url
        url = found.group(1)


def test_runs_pages_by_keyset_cover_every_run_once_newest_first(
    stack: Stack, public_runs: tuple[dict[str, Any], list[str]]
) -> None:
    experiment, ids = public_runs
    with httpx2.Client(base_url=stack.url, timeout=30) as http:  # anonymous: it is public
        pages = _walk(http, f"/experiments/{experiment['id']}")
        assert [len(page) for page in pages] == [25, 5]
        seen = [run for page in pages for run in page]
        assert sorted(seen) == sorted(ids)
        runs = {}
        with httpx2.Client(base_url=f"{stack.url}/api/v1", timeout=30) as api:
            found = api.post(
                f"/experiment/{experiment['id']}/drift/search",
                json={},
                params={"page_size": 100},
            )
            runs = {run["id"]: run for run in found.json()}
        keys = [(runs[run]["created_at"], run) for run in seen]
        assert keys == sorted(keys, reverse=True)
        # And back from the last page through the "Newer runs" links: the same pages.
        last = _last_page_url(http, f"/experiments/{experiment['id']}")
        assert _walk(http, last, NEWER) == list(reversed(pages))


def test_filters_stay_in_the_paging_links(
    stack: Stack, public_runs: tuple[dict[str, Any], list[str]]
) -> None:
    experiment, _ = public_runs
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        base = f"/experiments/{experiment['id']}"
        failed = _walk(http, f"{base}?status=Failed")
        assert [len(page) for page in failed] == [3]
        m0 = _walk(http, f"{base}?model=m0&tags=t0")
        assert sum(len(page) for page in m0) == 5  # i = 0, 6, 12, 18, 24
        page = http.get(f"{base}?model=m1")
        assert 'value="m1"' in page.text  # the form shows the filter it applied
        assert "10 runs on this page, matching the filters" in page.text


def test_bad_filters_are_explained_not_failed(
    stack: Stack, public_runs: tuple[dict[str, Any], list[str]]
) -> None:
    experiment, _ = public_runs
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        page = http.get(
            f"/experiments/{experiment['id']}",
            params={"from": "yesterday", "status": "Lost"},
        )
        assert page.status_code == 200
        assert "is not a date" in page.text
        assert "Unknown status" in page.text
        assert "25 runs on this page, newest" in page.text  # both ignored
        garbage = http.get(f"/experiments/{experiment['id']}?after=garbage")
        assert garbage.status_code == 200  # a cursor the backend refuses: the newest runs
        assert len(RUN_LINK.findall(garbage.text)) == 25
        nameless = http.get(f"/experiments/{experiment['id']}/charts/feature.csv")
        assert nameless.status_code == 422
        long = http.get(f"/experiments/{experiment['id']}", params={"model": "m" * 300})
        assert long.status_code == 422
        assert "Invalid request" in long.text


def test_the_live_fragment_is_the_runs_table_alone(
    stack: Stack, public_runs: tuple[dict[str, Any], list[str]]
) -> None:
    experiment, _ = public_runs
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        fragment = http.get(f"/experiments/{experiment['id']}/runs-table?status=Failed")
        assert fragment.status_code == 200
        assert fragment.text.lstrip().startswith('<div id="runs"')
        assert "<html" not in fragment.text
        assert len(RUN_LINK.findall(fragment.text)) == 3
        # Its own refresh URL keeps the filter.
        assert 'hx-get="/experiments/' in fragment.text
        assert "status=Failed" in fragment.text


def test_a_private_experiment_s_pages_are_not_found_anonymously(stack: Stack) -> None:
    experiment = stack.create("alice", unique("private-pages"))
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        for path in ("", "/baselines", "/runs-table", "/runs/nope"):
            response = http.get(f"/experiments/{experiment['id']}{path}")
            assert response.status_code == 404, path
            assert experiment["name"] not in response.text


def test_runs_filter_is_one_document_when_keys_differ() -> None:
    filters = RunFilters.parse("m1", "Failed", "a, b", "2026-01-01", "2026-01-31")
    assert runs_filter(filters) == {
        "model": "m1",
        "job_status": "Failed",
        "tags": {"$all": ["a", "b"]},
        "created_at": {"$gte": "2026-01-01T00:00:00+00:00", "$lt": "2026-02-01T00:00:00+00:00"},
    }
    assert runs_filter(RunFilters()) == {}


def test_run_filters_explain_what_they_ignore() -> None:
    filters = RunFilters.parse("", "Sleeping", "", "2026-13-01", "")
    assert filters.status == ""
    assert filters.start == ""
    assert len(filters.errors) == 2
    assert RunFilters.parse("", "", "", "", "").active is False


def test_heatmap_cells_fall_in_a_few_colour_classes() -> None:
    assert cell_level(None) == 0
    assert cell_level({"drifted": True, "p_value": 0.5}) == 4
    assert cell_level({"drifted": False, "p_value": 0.01, "p_value_adjusted": 0.04}) == 3
    assert cell_level({"drifted": False, "p_value": 0.1, "p_value_adjusted": None}) == 2
    assert cell_level({"drifted": False, "p_value": None, "distance": 0.01}) == 1
    grid = heatmap_grid(
        {
            "runs": [{"run_id": "new"}, {"run_id": "old"}],
            "features": [{"feature": "x", "drifted_runs": 1}],
            "cells": [{"run_id": "new", "feature": "x", "drifted": True}],
        }
    )
    assert [run["run_id"] for run in grid["runs"]] == ["old", "new"]  # oldest left
    assert [c["level"] for c in grid["rows"][0]["cells"]] == [0, 4]


def test_histogram_bins_are_named_by_their_edges() -> None:
    histogram = {"edges": [0.0, 1.0, 2.5], "reference": [1, 2, 3, 4], "current": [0, 0, 4, 4]}
    assert bin_labels(histogram) == ["< 0", "[0, 1)", "[1, 2.5)", "> 2.5"]
    rows = histogram_rows(histogram)
    assert [r["current_share"] for r in rows] == [0, 0, 0.5, 0.5]
    assert bin_labels({"categories": ["a", "b"], "reference": [1, 1], "current": [1, 1]}) == [
        "a",
        "b",
    ]
    folded = {
        "categories": ["a", "__folded__"],
        "reference": [1, 9],
        "current": [1, 9],
        "folded": 120,
    }
    assert bin_labels(folded) == ["a", "120 other categories"]
    report = {
        "features": [
            {"feature": "a", "drifted": False, "histogram": histogram},
            {"feature": "b", "drifted": True, "histogram": histogram},
            {"feature": "c", "drifted": True, "histogram": None},
        ]
    }
    assert (pick_feature(report, "") or {}).get("feature") == "b"
    assert (pick_feature(report, "a") or {}).get("feature") == "a"
    assert pick_feature({"features": []}, "") is None


def test_levels_and_numbers_for_people() -> None:
    experiment = {
        "public": True,
        "permissions": [{"entity": "u1", "level": "Edit"}, {"entity": "grp", "level": "Manage"}],
    }
    assert level_of(experiment, None, []) == "Read"
    assert level_of(experiment, "u1", []) == "Edit"
    assert level_of(experiment, "u1", ["grp"]) == "Manage"
    assert level_of({**experiment, "public": False}, "u2", []) is None
    assert number(None) == ""
    assert number(0.000012345) == "1.23e-05"
    assert number(0.123456) == "0.1235"
    assert number(3) == "3"
    run = {"created_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T01:02:03+00:00"}
    assert duration(run) == "1 h 02 min"
    assert duration({**run, "finished_at": None}) == ""
