"""Screenshots of the dashboard's main pages for the README (``make screenshots``).

Starts the local stack (``drift-monitor-server dev``: SecantusDB, the development OIDC
provider, the API and the dashboard, with the sandbox demo data) on free ports in a
temporary directory, adds a baseline and a server-side check to alice's public
``image-classifier`` (so the charts, the heatmap and a report with a histogram have data)
and two weeks of a classifier's predictions and late labels (the Performance tab),
logs in as alice with Playwright on Debian's chromium and saves 1280x800 PNGs under
docs/screenshots/. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
from drift_backend.devstack.sandbox import load_identities, sandbox_dir
from drift_backend.devstack.services import fetch_token, free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
EXPERIMENT = "image-classifier"  # alice's, public, in sandbox/demo.json
#: How long the stack may take to start (a bound, not a measurement).
START_SECONDS = 120.0


def start_stack(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "drift-monitor-server"),
        "dev",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--mongo-port",
        str(free_port()),
        "--oidc-port",
        str(free_port()),
    ]
    log = (data_dir / "stack.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the stack stopped; see {data_dir / 'stack.log'}")
        try:
            if httpx2.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return process, url
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    raise SystemExit("the stack did not become ready")


def stop_stack(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)  # Ctrl-C: it stops every process it started
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=10)


def _columns(seed: int, n: int, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "embedding_norm": rng.normal(10.0 + shift, 2.0, n).round(3).tolist(),
        "brightness": rng.beta(2 + shift, 5, n).round(4).tolist(),
        "width": rng.choice([224, 256, 512], n, p=[0.6, 0.3, 0.1]).tolist(),
        "category": rng.choice(
            ["shoes", "bags", "shirts", "hats"], n, p=[0.4, 0.3, 0.2, 0.1]
        ).tolist(),
    }


def add_checks(url: str, issuer: str) -> dict[str, str]:
    """A baseline and a dozen checks over the last week (the server accepts backdating up to
    7 days), drifting more and more, on the demo experiment."""
    identities = load_identities(sandbox_dir())
    token = fetch_token(issuer, "alice", client_secret=identities["client"]["secret"])
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with httpx2.Client(base_url=f"{url}/api/v1", headers=headers, timeout=120) as api:
        found = api.post("/experiment/search", json={"name": EXPERIMENT}).json()
        experiment = found[0]["id"]
        base = f"/experiment/{experiment}"
        baseline = api.post(
            f"{base}/baseline",
            params={"name": "training-2026-10", "model": "resnet-50"},
            json={"columns": _columns(1, 5000)},
        )
        baseline.raise_for_status()
        check_id = ""
        start = datetime.now(UTC) - timedelta(days=6, hours=12)
        for step in range(12):
            checked = api.post(
                f"{base}/check",
                params={
                    "model": "resnet-50",
                    "wait": 60,
                    "created_at": (start + timedelta(hours=13 * step)).isoformat(),
                },
                json={"columns": _columns(10 + step, 2000, shift=max(0.0, step - 6) * 0.15)},
            )
            checked.raise_for_status()
            check_id = checked.json()["id"]
        add_performance(api, base)
    return {"experiment": experiment, "baseline": baseline.json()["id"], "check": check_id}


#: The Performance tab's model (issue 10): a binary classifier with a labelled reference.
PERFORMANCE_MODEL = "defect-detector"


def _arrow_upload(api: httpx2.Client, path: str, columns: dict[str, Any]) -> None:
    import pyarrow as pa
    from drift_backend.baselines.ingest import ARROW_STREAM, arrow_stream

    answer = api.post(
        path,
        params={"model": PERFORMANCE_MODEL},
        content=arrow_stream(pa.table(columns)),
        headers={"Content-Type": ARROW_STREAM},
    )
    answer.raise_for_status()


def add_performance(api: httpx2.Client, base: str) -> None:
    """Two weeks of daily predictions with probabilities, their labels arriving late (the
    last days partly or not yet labelled), and a concept shift in the last week (the
    realised accuracy leaves the estimate's band)."""
    import pyarrow as pa

    rng = np.random.default_rng(7)

    def rows(n: int, flip: float) -> tuple[Any, Any, Any]:
        p1 = rng.uniform(0.02, 0.98, n).round(3)
        y_true = (rng.uniform(size=n) < p1).astype(np.int64)
        flipped = rng.uniform(size=n) < flip
        return p1, (p1 >= 0.5).astype(np.int64), np.where(flipped, 1 - y_true, y_true)

    p1, y_pred, y_true = rows(2000, 0.0)
    _arrow_upload(
        api,
        f"{base}/performance-reference",
        {"y_true": y_true, "y_pred": y_pred, "proba_0": (1 - p1).round(3), "proba_1": p1},
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    coverage = [1.0] * 11 + [0.9, 0.5, 0.0]
    for day in range(14):
        n = 400
        p1, y_pred, y_true = rows(n, 0.0 if day < 8 else 0.04 * (day - 7))
        start = today - timedelta(days=13 - day)
        ids = [f"{day}-{i}" for i in range(n)]
        times = [start + timedelta(minutes=3 * i) for i in range(n)]
        _arrow_upload(
            api,
            f"{base}/predictions",
            {
                "id": ids,
                "y_pred": y_pred,
                "proba_0": (1 - p1).round(3),
                "proba_1": p1,
                "time": pa.array(times, pa.timestamp("ms", tz="UTC")),
            },
        )
        labelled = int(n * coverage[day])
        if labelled:
            _arrow_upload(
                api, f"{base}/ground-truth", {"id": ids[:labelled], "y_true": y_true[:labelled]}
            )


def shoot(url: str, issuer: str, ids: dict[str, str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    exp = f"/experiments/{ids['experiment']}"
    pages = [
        ("experiments", "/experiments", "light", None),
        ("experiment", exp, "light", None),
        ("experiment-charts", exp, "light", "#chart-timeline"),
        ("experiment-heatmap", exp, "light", "#chart-heatmap"),
        ("run-report", f"{exp}/runs/{ids['check']}", "light", None),
        ("run-histogram", f"{exp}/runs/{ids['check']}", "light", "#histogram"),
        ("baselines", f"{exp}/baselines/{ids['baseline']}", "light", None),
        ("permissions", f"{exp}/permissions", "light", None),
        ("account", "/account", "light", None),
        ("performance", f"{exp}/performance?model={PERFORMANCE_MODEL}", "light", None),
        (
            "performance-confusion",
            f"{exp}/performance?model={PERFORMANCE_MODEL}",
            "light",
            "#perf-confusion",
        ),
        ("experiment-dark", exp, "dark", None),
    ]
    saved = []
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
            # The development provider's login page pulls a stylesheet from a CDN.
            context.route("https://**", lambda route: route.abort())
            page = context.new_page()
            page.goto(f"{url}/login?next=/experiments")
            page.locator('button[name="sub"][value="alice"]').click()
            page.wait_for_url(f"{url}/experiments")
            for name, path, wanted, anchor in pages:
                if wanted != scheme:
                    continue
                page.goto(url + path)
                page.wait_for_load_state("networkidle")
                if anchor:
                    page.locator(anchor).first.evaluate(
                        "(element) => element.scrollIntoView({block: 'start'})"
                    )
                target = OUT / f"{name}.png"
                page.screenshot(path=str(target))
                saved.append(target)
            context.close()
        browser.close()
    return saved


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="drift-screens-") as tmp:
        process, url = start_stack(Path(tmp))
        try:
            state = json.loads((Path(tmp) / "stack.json").read_text())
            ids = add_checks(url, state["issuer"])
            saved = shoot(url, state["issuer"], ids)
        finally:
            stop_stack(process)
    for path in saved:
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
