"""The Performance tab (issue 10) against the same-origin stack: predictions, late labels and
a labelled reference uploaded through the backend's API (Arrow), then the tab in Chromium:
its tables hold the API's values, each CSV equals its table, incomplete windows are marked
provisional, the confusion matrix of a picked window, the decisions; a new label batch
updates the open page through the real event relay. Over plain HTTP: a public experiment's
tab for anonymous visitors (no JavaScript needed), a private one hidden from them. The
table builders' generic handling of metrics the backend may add, without a stack."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx2
import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream
from drift_dashboard.pages import performance_tables as tables
from drift_dashboard.pages.performance import PerformanceQuery

from tests.dashboard.conftest import Stack, Visitor, unique

#: Predictions per day of the classifier: day 0 fully labelled (complete), day 1 40 %
#: labelled (incomplete), day 2 unlabelled.
PER_DAY = 200
LABELLED = (200, 80, 0)


def api_client(stack: Stack, who: str) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {stack.token(who)}"}
    return httpx2.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=60)


def upload(api: httpx2.Client, path: str, model: str, columns: dict[str, Any]) -> Any:
    body = arrow_stream(pa.table(columns))
    made = api.post(
        path, params={"model": model}, content=body, headers={"Content-Type": ARROW_STREAM}
    )
    assert made.status_code == 200, made.text
    return made.json()


def binary_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated binary data: the label is drawn with the predicted probability."""
    p1 = rng.uniform(0.02, 0.98, n).round(3)
    y_true = (rng.uniform(size=n) < p1).astype(np.int64)
    return p1, (p1 >= 0.5).astype(np.int64), y_true


@dataclass
class Seeded:
    experiment: dict[str, Any]
    query: dict[str, str]

    @property
    def url(self) -> str:
        return f"/experiments/{self.experiment['id']}/performance"


def seed(stack: Stack, experiment: dict[str, Any]) -> dict[str, str]:
    """A binary classifier over three days (with a reference) and a regression model; the
    query (from, to) of those days."""
    rng = np.random.default_rng(10)
    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    base = f"/experiment/{experiment['id']}"
    with api_client(stack, "alice") as api:
        p1, y_pred, y_true = binary_rows(rng, 600)
        upload(
            api,
            f"{base}/performance-reference",
            "clf",
            {"y_true": y_true, "y_pred": y_pred, "proba_0": 1 - p1, "proba_1": p1},
        )
        for day, labelled in enumerate(LABELLED):
            p1, y_pred, y_true = binary_rows(rng, PER_DAY)
            ids = [f"d{day}-{i}" for i in range(PER_DAY)]
            times = [day0 + timedelta(days=day, minutes=5 * i) for i in range(PER_DAY)]
            upload(
                api,
                f"{base}/predictions",
                "clf",
                {
                    "id": ids,
                    "y_pred": y_pred,
                    "proba_0": (1 - p1).round(3),
                    "proba_1": p1,
                    "time": pa.array(times, pa.timestamp("ms", tz="UTC")),
                },
            )
            if labelled:
                upload(
                    api,
                    f"{base}/ground-truth",
                    "clf",
                    {"id": ids[:labelled], "y_true": y_true[:labelled]},
                )
        y = rng.normal(10, 2, 50)
        ids = [f"r{i}" for i in range(50)]
        times = [day0 + timedelta(hours=i) for i in range(50)]
        upload(
            api,
            f"{base}/predictions",
            "reg",
            {"id": ids, "y_pred": y, "time": pa.array(times, pa.timestamp("ms", tz="UTC"))},
        )
        upload(api, f"{base}/ground-truth", "reg", {"id": ids, "y_true": y + rng.normal(0, 1, 50)})
    return {"from": day0.date().isoformat(), "to": datetime.now(UTC).date().isoformat()}


@pytest.fixture(scope="module")
def private(stack: Stack) -> Seeded:
    experiment = stack.create("alice", unique("perf"))
    return Seeded(experiment, seed(stack, experiment))


def performance(stack: Stack, experiment: dict[str, Any], **params: str) -> dict[str, Any]:
    """The backend's answer, as alice (what the tab must show)."""
    with api_client(stack, "alice") as api:
        answer = api.get(
            f"/experiment/{experiment['id']}/performance", params={"window": "day", **params}
        )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def table_values(visitor: Visitor, selector: str) -> list[list[str]]:
    """A table's header keys then each row's data-value (what charts.js and the CSV read)."""
    table = visitor.page.locator(selector)
    keys = table.locator("thead th").evaluate_all("ths => ths.map(th => th.dataset.key)")
    rows = table.locator("tbody tr").evaluate_all(
        "trs => trs.map(tr => Array.from(tr.querySelectorAll('th, td'), c => c.dataset.value))"
    )
    return [keys, *rows]


def csv_of(visitor: Visitor, section: str) -> list[list[str]]:
    href = visitor.page.locator(f"#{section} a[download]").get_attribute("href")
    answer = visitor.context.request.get(visitor.stack.url + href)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.text())))


def test_the_tab_shows_the_api_s_numbers_and_each_csv_equals_its_table(
    alice: Visitor, private: Seeded
) -> None:
    query = "&".join(f"{k}={v}" for k, v in {"model": "clf", **private.query}.items())
    assert alice.goto(f"{private.url}?{query}").status == 200
    answer = performance(alice.stack, private.experiment, model="clf", **_api_range(private))
    windows = answer["windows"]
    assert [w["complete"] for w in windows] == [True, False, False]
    reference = answer["reference"]["metrics"]["accuracy"]["value"]

    # Accuracy over time (the classifier's default metric): realised, estimated, reference.
    metric = table_values(alice, "#perf-metric table.perf-table")
    assert metric[0][:8] == [
        "start",
        "complete",
        "coverage",
        "realised",
        "estimated",
        "estimated_low",
        "estimated_high",
        "reference",
    ]
    for row, w in zip(metric[1:], windows, strict=True):
        accuracy = w["metrics"]["accuracy"]["value"]
        estimate = w["estimated"]["accuracy"]
        assert row[:8] == [
            w["start"],
            tables.raw(w["complete"]),
            tables.raw(w["coverage"]),
            tables.raw(accuracy),
            tables.raw(estimate["value"]),
            tables.raw(estimate["low"]),
            tables.raw(estimate["high"]),
            tables.raw(reference),
        ]
    assert metric[3][3] == ""  # the unlabelled day has no realised accuracy
    assert csv_of(alice, "perf-metric") == metric
    # Incomplete windows are provisional, never shown like final ones.
    rows = alice.page.locator("#perf-metric table.perf-table tbody tr")
    assert rows.nth(0).get_attribute("class") is None
    assert rows.nth(1).get_attribute("class") == "provisional"
    assert "provisional" in (rows.nth(1).text_content() or "")
    alice.page.locator("#perf-metric canvas").first.wait_for()
    legend = alice.page.locator("#perf-metric .u-legend").inner_text()
    for series in ("Realised", "provisional", "Estimated", "Reference"):
        assert series in legend, legend

    # Label coverage and lag.
    coverage = table_values(alice, "#perf-coverage table.perf-table")
    assert [row[1:4] for row in coverage[1:]] == [
        [str(PER_DAY), str(n), tables.raw(w["coverage"])]
        for n, w in zip(LABELLED, windows, strict=True)
    ]
    assert {row[4] for row in coverage[1:]} == {tables.raw(answer["min_coverage"])}
    assert csv_of(alice, "perf-coverage") == coverage
    alice.page.locator("#perf-coverage canvas").first.wait_for()

    # The confusion matrix of the newest complete window (day 0), rows the true class.
    matrix = table_values(alice, "#perf-confusion table.perf-table")
    expected = windows[0]["confusion_matrix"]
    assert matrix[0] == ["true"] + [f"predicted_{label}" for label in expected["labels"]]
    assert [row[1:] for row in matrix[1:]] == [
        [str(n) for n in counts] for counts in expected["matrix"]
    ]
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == LABELLED[0]
    assert csv_of(alice, "perf-confusion") == matrix
    # Picking the incomplete day (a GET form: the choice is in the URL) shows its matrix.
    alice.page.locator("#p-at").select_option(windows[1]["start"])
    alice.page.locator("#perf-confusion button").click()
    alice.page.wait_for_url(re.compile(r".*at=.*"))
    matrix = table_values(alice, "#perf-confusion table.perf-table")
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == LABELLED[1]
    assert "provisional" in alice.page.locator("#perf-confusion-window").inner_text()
    assert csv_of(alice, "perf-confusion") == matrix

    # The decision per window, and every metric.
    decisions = table_values(alice, "#perf-decisions table.perf-table")
    for row, w in zip(decisions[1:], windows, strict=True):
        d = w["decision"]
        assert row[2:6] == [tables.raw(d[k]) for k in ("degraded", "metric", "p_value", "reason")]
    assert decisions[2][2] == ""  # incomplete: no decision, and the reason says so
    assert "coverage" in decisions[2][5]
    assert csv_of(alice, "perf-decisions") == decisions
    every = table_values(alice, "#perf-all table.metrics-table")
    for name in windows[0]["metrics"]:
        column = every[0].index(name)
        assert [row[column] for row in every[1:]] == [
            tables.raw(w["metrics"][name]["value"]) for w in windows
        ]
    assert csv_of(alice, "perf-all") == every

    # Another metric from the form: f1, in the URL.
    alice.page.get_by_label("Metric", exact=True).select_option("f1")
    alice.page.locator("form[aria-label='Choose the model and windows'] button").click()
    alice.page.wait_for_url(re.compile(r".*metric=f1.*"))
    assert "f1 over time" in alice.page.locator("#perf-metric h2").inner_text()
    f1 = table_values(alice, "#perf-metric table.perf-table")
    assert [row[3] for row in f1[1:]] == [tables.raw(w["metrics"]["f1"]["value"]) for w in windows]
    assert csv_of(alice, "perf-metric") == f1
    assert alice.csp_violations() == []


def _api_range(seeded: Seeded) -> dict[str, str]:
    query = PerformanceQuery.parse("m", "day", seeded.query["from"], seeded.query["to"], "", "")
    params = query.api_params()
    return {"from": params["from"], "to": params["to"]}


def test_a_regression_model_defaults_to_mae_and_has_no_confusion_matrix(
    stack: Stack, private: Seeded
) -> None:
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        # Anonymous: the private experiment's tab, body and CSV are all hidden.
        for path in ("", "/body", "/metric.csv"):
            hidden = http.get(f"{private.url}{path}", params={"model": "reg"})
            assert hidden.status_code == 404, path
            assert "clf" not in hidden.text
    # As alice, without a browser: a plain GET of the tab works without JavaScript.
    answer = performance(stack, private.experiment, model="reg", **_api_range(private))
    cookies = _login_cookies(stack)
    with httpx2.Client(base_url=stack.url, timeout=30, cookies=cookies) as http:
        page = http.get(private.url, params={"model": "reg", **private.query})
    assert page.status_code == 200, page.text
    assert "mae over time" in page.text
    assert 'id="perf-confusion"' not in page.text
    mae = [tables.raw(w["metrics"]["mae"]["value"]) for w in answer["windows"]]
    for value in mae:
        assert f'data-value="{value}"' in page.text


def _login_cookies(stack: Stack) -> dict[str, str]:
    """Alice's session cookie from a login through the provider's form over plain HTTP."""
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        start = http.get("/login", params={"next": "/experiments"})
        authorize = start.headers["location"]
        with httpx2.Client(timeout=30) as provider:
            chosen = provider.post(authorize, data={"sub": "alice"})
        back = http.get(chosen.headers["location"])
        assert back.status_code in (302, 303), back.text
        return dict(http.cookies)


def test_a_public_experiment_s_tab_is_open_to_anonymous_visitors(stack: Stack) -> None:
    experiment = stack.create("alice", unique("perf-public"), public=True)
    with api_client(stack, "alice") as api:
        upload(
            api,
            f"/experiment/{experiment['id']}/predictions",
            "m",
            {"id": ["a", "b", "c"], "y_pred": ["x", "y", "x"]},
        )
        upload(
            api,
            f"/experiment/{experiment['id']}/ground-truth",
            "m",
            {"id": ["a", "b"], "y_true": ["x", "x"]},
        )
    url = f"/experiments/{experiment['id']}/performance"
    with httpx2.Client(base_url=stack.url, timeout=30) as http:
        page = http.get(url)
        assert page.status_code == 200, page.text
        assert '<option value="m" selected>' in page.text
        assert 'data-value="0.5"' in page.text  # accuracy 1 of 2, provisional (2 of 3)
        assert "provisional" in page.text
        table = http.get(f"{url}/coverage.csv")
        assert table.status_code == 200
        rows = list(csv.reader(io.StringIO(table.text)))
        assert rows[1][1:3] == ["3", "2"]
        # A model without predictions is the backend's 404, shown on the tab.
        missing = http.get(url, params={"model": "nope"})
        assert missing.status_code == 200
        assert "nope" in missing.text
        assert 'role="alert"' in missing.text


def test_a_label_batch_updates_the_open_tab(alice: Visitor, stack: Stack) -> None:
    experiment = stack.create("alice", unique("perf-live"))
    base = f"/experiment/{experiment['id']}"
    with api_client(stack, "alice") as api:
        upload(api, f"{base}/predictions", "live", {"id": ["a", "b"], "y_pred": [1, 0]})
        alice.goto(f"/experiments/{experiment['id']}/performance")
        alice.wait_for_live_updates()
        labelled = alice.page.locator("#perf-coverage table.perf-table tbody tr td").nth(1)
        assert labelled.get_attribute("data-value") == "0"
        upload(api, f"{base}/ground-truth", "live", {"id": ["a", "b"], "y_true": [1, 1]})
        # Swapped in by htmx on performance.window_updated, without a reload.
        alice.page.wait_for_function(
            "() => document.querySelector('#perf-coverage table.perf-table tbody td:nth-of-type(2)')"
            ".dataset.value === '2'"
        )
    accuracy = alice.page.locator("#perf-metric table.perf-table tbody tr td").nth(2)
    assert accuracy.get_attribute("data-value") == "0.5"
    alice.page.locator("#perf-metric canvas").first.wait_for()
    assert alice.csp_violations() == []


def test_axe_finds_no_serious_violation_on_the_tab(
    browser: Any, stack: Stack, private: Seeded
) -> None:
    for scheme in ("light", "dark"):
        visitor = Visitor(browser, stack, bypass_csp=True)
        try:
            visitor.login("alice")
            visitor.page.emulate_media(color_scheme=scheme)
            visitor.goto(f"{private.url}?model=clf&from={private.query['from']}")
            visitor.page.locator("#perf-metric canvas").first.wait_for()
            for details in visitor.page.locator("details").all():
                details.evaluate("d => { d.open = true; }")
            assert visitor.axe_serious() == [], scheme
        finally:
            visitor.close()


class _Cells(HTMLParser):
    """The ``data-value`` of each cell of a ``table.<cls>``, row by row, its header keys
    first (what the CSV has), and the links of its cells."""

    def __init__(self, cls: str) -> None:
        super().__init__()
        self.cls = cls
        self.inside = False
        self.rows: list[list[str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and self.cls in (found.get("class") or "").split():
            self.inside = True
        elif not self.inside:
            return
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self.rows[-1].append(found.get("data-key") or found.get("data-value") or "")
        elif tag == "a":
            self.links.append(found.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False


def _runs_table(html: str) -> _Cells:
    cells = _Cells("runs-perf-table")
    cells.feed(html)
    return cells


def _pager(html: str) -> dict[str, str]:
    """The runs table's pager links by their text."""
    nav = html.split('aria-label="Drift runs pages"', 1)[1].split("</nav>", 1)[0]
    return {
        text: unescape(href)
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav)
    }


def test_the_tab_lists_the_models_runs_a_page_at_a_time(stack: Stack) -> None:
    """Below the windows: the model's runs with their metrics, newest first, paged by the
    backend's cursors with plain links (no JavaScript), each row linking to its run, and a
    CSV of the page shown."""
    experiment = stack.create("alice", unique("perf-runs"))
    base = f"/experiment/{experiment['id']}"
    rng = np.random.default_rng(21)
    now = datetime.now(UTC).replace(microsecond=0)
    runs: list[str] = []
    with api_client(stack, "alice") as api:
        for i in range(23):  # 20 a page: two pages
            made = api.post(
                base + "/drift",
                json={
                    "model": "clf",
                    "job_status": "Running",
                    "created_at": (now - timedelta(hours=i)).isoformat(),
                },
            )
            assert made.status_code == 201, made.text
            runs.append(made.json()["id"])
            p1, y_pred, y_true = binary_rows(rng, 10)
            ids = [f"r{i}-{k}" for k in range(10)]
            body = arrow_stream(
                pa.table({"id": ids, "y_pred": y_pred, "proba_0": (1 - p1).round(3), "proba_1": p1})
            )
            sent = api.post(
                base + "/predictions",
                params={"model": "clf", "run": runs[-1]},
                content=body,
                headers={"Content-Type": ARROW_STREAM},
            )
            assert sent.status_code == 200, sent.text
            # Every other run labelled in full (complete), the rest in part (provisional).
            labelled = 10 if i % 2 == 0 else 3
            upload(
                api,
                base + "/ground-truth",
                "clf",
                {"id": ids[:labelled], "y_true": y_true[:labelled]},
            )
        first = api.get(base + "/performance/runs", params={"model": "clf", "limit": 20}).json()
        second = api.get(
            base + "/performance/runs", params={"model": "clf", "limit": 20, "after": first["next"]}
        ).json()
    answered = first["runs"] + second["runs"]
    assert [r["run_id"] for r in answered] == runs  # newest first

    url = f"/experiments/{experiment['id']}/performance"
    with httpx2.Client(base_url=stack.url, timeout=30, cookies=_login_cookies(stack)) as http:
        page = http.get(url, params={"model": "clf"})
        assert page.status_code == 200, page.text
        table = _runs_table(page.text)
        estimated = any((r.get("estimated") or {}).get("accuracy") for r in answered)
        keys = ["run_id", "run_created_at", "n_predicted", "n_labelled", "coverage", "complete"]
        keys += ["accuracy"] + (["estimated_accuracy"] if estimated else [])
        assert table.rows[0] == keys

        def expected(run: dict[str, Any]) -> list[str]:
            row = [run["run_id"], run["run_created_at"], run["n_predicted"], run["n_labelled"]]
            row += [run["coverage"], run["complete"], run["metrics"]["accuracy"]["value"]]
            if estimated:
                row.append((run["estimated"] or {}).get("accuracy", {}).get("value"))
            return [tables.raw(v) for v in row]

        assert table.rows[1:] == [expected(r) for r in first["runs"]]
        assert table.links == [f"/experiments/{experiment['id']}/runs/{r}" for r in runs[:20]]
        assert 'class="provisional"' in page.text
        pager = _pager(page.text)
        assert set(pager) == {"Older runs"}
        csv_href = re.search(r'<a href="([^"]+/runs\.csv[^"]*)" download>', page.text)
        assert csv_href is not None
        rows = list(csv.reader(io.StringIO(http.get(unescape(csv_href.group(1))).text)))
        assert rows == table.rows

        # Older runs: the last three; back by "Newer runs" to the first page.
        older = http.get(pager["Older runs"])
        assert older.status_code == 200, older.text
        assert _runs_table(older.text).rows[1:] == [expected(r) for r in second["runs"]]
        pager = _pager(older.text)
        assert set(pager) == {"Newest runs", "Newer runs"}
        csv_href = re.search(r'<a href="([^"]+/runs\.csv[^"]*)" download>', older.text)
        assert csv_href is not None
        rows = list(csv.reader(io.StringIO(http.get(unescape(csv_href.group(1))).text)))
        assert rows == _runs_table(older.text).rows
        newer = http.get(pager["Newer runs"])
        assert _runs_table(newer.text).rows == table.rows
        # The body the live updates fetch keeps the page of runs.
        live = http.get(f"{url}/body", params={"model": "clf", "after": first["next"]})
        assert _runs_table(live.text).rows[1:] == [expected(r) for r in second["runs"]]
        # A cursor the backend refuses (edited): the newest runs, not an error.
        edited = http.get(url, params={"model": "clf", "after": "garbage"})
        assert edited.status_code == 200, edited.text
        assert _runs_table(edited.text).rows == table.rows
        # A model whose predictions have no run: no table, a word on how to record them.
        with api_client(stack, "alice") as api:
            upload(api, base + "/predictions", "norun", {"id": ["a"], "y_pred": [1]})
        plain = http.get(url, params={"model": "norun"})
        assert 'id="perf-runs"' in plain.text
        assert "runs-perf-table" not in plain.text
        assert "recorded with a drift run" in plain.text


def test_the_runs_table_shows_the_regression_mae() -> None:
    page: dict[str, Any] = {
        "task": "regression",
        "runs": [
            {
                "run_id": "r1",
                "run_created_at": "2026-03-02T00:00:00+00:00",
                "n_predicted": 4,
                "n_labelled": 4,
                "coverage": 1.0,
                "complete": True,
                "metrics": {"mae": {"value": 0.25}, "rmse": {"value": 0.5}},
                "estimated": None,
            }
        ],
    }
    table = tables.runs_table(page)
    assert [c.key for c in table.columns][-1] == "mae"  # no estimate: no column for one
    assert table.rows == [["r1", "2026-03-02T00:00:00+00:00", 4, 4, 1.0, True, 0.25]]
    assert table.complete == [True]


# --- the tables alone --------------------------------------------------------------------


def _window(start: str, complete: bool, **more: Any) -> dict[str, Any]:
    return {
        "start": start,
        "complete": complete,
        "coverage": 1.0 if complete else 0.1,
        "n_predicted": 10,
        "n_labelled": 10 if complete else 1,
        "label_lag": {"mean_seconds": 5.0, "max_seconds": 9.0},
        "metrics": {"accuracy": {"value": 0.9, "reason": None, "bound": None}},
        "decision": {"degraded": False, "metric": "accuracy", "p_value": 0.4, "reason": None},
        **more,
    }


def test_metrics_and_estimates_the_backend_adds_show_up_by_name() -> None:
    estimated = {
        "accuracy": {"value": 0.8, "low": 0.7, "high": 0.9, "reason": None},
        "roc_auc": {"value": 0.85, "low": 0.8, "high": 0.9, "reason": None},
        "calibrated": True,
    }
    answer: dict[str, Any] = {
        "task": "classification",
        "min_coverage": 0.8,
        "reference": {"n": 5, "metrics": {"accuracy": {"value": 0.95}, "new": {"value": 1.0}}},
        "windows": [
            _window("2026-03-02T00:00:00+00:00", True, estimated=estimated),
            _window(
                "2026-03-03T00:00:00+00:00",
                False,
                decision={"degraded": None, "metric": "accuracy", "reason": "x", "concept": 1},
            ),
        ],
    }
    assert tables.metric_names(answer) == ["accuracy", "new"]
    assert tables.estimated_names(answer) == ["accuracy", "roc_auc"]
    # A metric only estimated can be drawn; an unknown one falls back to the task's default.
    assert tables.pick_metric(answer, "roc_auc") == "roc_auc"
    assert tables.pick_metric(answer, "nothing") == "accuracy"
    roc = tables.metric_table(answer, "roc_auc")
    assert roc.rows[0][3:8] == [None, 0.85, 0.8, 0.9, None]
    every = tables.all_metrics_table(answer)
    keys = [c.key for c in every.columns]
    assert "estimated_roc_auc_high" in keys
    assert "estimated_calibrated" in keys
    assert every.rows[0][keys.index("estimated_calibrated")] is True
    decisions = tables.decisions_table(answer)
    assert [c.key for c in decisions.columns][-1] == "concept"
    assert decisions.rows[1][-1] == 1
    assert decisions.csv().splitlines()[2].endswith(",,accuracy,,x,1")
    # Decisions per metric (where the backend gives them): a column each, and the drawn
    # metric's own decision beside its values.
    answer["windows"][0]["decisions"] = {
        "accuracy": {"degraded": False, "metric": "accuracy"},
        "roc_auc": {"degraded": True, "metric": "roc_auc"},
    }
    decisions = tables.decisions_table(answer)
    assert [c.key for c in decisions.columns][-2:] == ["degraded_accuracy", "degraded_roc_auc"]
    assert decisions.rows[0][-2:] == [False, True]
    assert decisions.rows[1][-2:] == [None, None]
    degraded = [c.key for c in roc.columns].index("degraded")
    assert tables.metric_table(answer, "roc_auc").rows[0][degraded] is True
    assert roc.rows[0][degraded] is None  # before: no decision on roc_auc
    assert tables.metric_table(answer, "accuracy").rows[1][degraded] is None  # main: undecided
    # A structured field is written as JSON (in the page and the CSV alike).
    assert tables.raw({"b": 1, "a": [0.5, None]}) == '{"a":[0.5,null],"b":1}'
    # The matrix's default window: the newest complete one, else the newest.
    windows: list[dict[str, Any]] = answer["windows"]
    windows[0]["confusion_matrix"] = {"labels": ["a"], "matrix": [[3]]}
    windows[1]["confusion_matrix"] = {"labels": ["a"], "matrix": [[1]]}
    assert _picked(answer, "") == "2026-03-02T00:00:00+00:00"
    assert _picked(answer, "2026-03-03T00:00:00+00:00") == "2026-03-03T00:00:00+00:00"
    windows[0]["complete"] = False
    assert _picked(answer, "") == "2026-03-03T00:00:00+00:00"


def _picked(answer: dict[str, Any], wanted: str) -> str:
    window = tables.pick_window(answer, wanted)
    assert window is not None
    return str(window["start"])


def test_the_query_reads_dates_and_times_as_utc_and_explains_the_rest() -> None:
    query = PerformanceQuery.parse(" m ", "week", "2026-03-02", "2026-03-04T06:00", "", "")
    assert query.errors == []
    assert query.api_params() == {
        "model": "m",
        "window": "week",
        "from": "2026-03-02T00:00:00+00:00",
        "to": "2026-03-04T06:00:00+00:00",
    }
    day = PerformanceQuery.parse("m", "", "", "2026-03-04", "", "")
    assert day.api_params()["to"] == "2026-03-05T00:00:00+00:00"  # the end day is included
    bad = PerformanceQuery.parse("m", "month", "soon", "", "", "")
    assert bad.window == "day"
    assert len(bad.errors) == 2
    assert "from" not in bad.api_params()
    assert bad.query() == {"model": "m"}
