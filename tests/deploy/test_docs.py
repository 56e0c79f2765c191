"""docs/deploy.md matches the files: every repository path it names exists, every secret file
it names is one compose.prod.yml declares, and every DRIFT_* setting it names is a setting
of the backend or the dashboard or a variable the compose files read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from drift_backend.settings import Settings
from drift_dashboard.settings import DashboardSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "deploy.md").read_text()
TOP = ("compose", ".env.sample", "secrets/", "backend/", "frontend/", "reverse-proxy/",
       "deploy/", "tests/", "docs/", "sandbox/", "Makefile")  # fmt: skip


def _named_paths() -> set[str]:
    found = set()
    for token in re.findall(r"`([^`\s]+)`", DOC):
        if token.startswith(TOP) and "<" not in token:
            found.add(token.rstrip("/"))
    return found


def test_every_named_file_exists() -> None:
    paths = _named_paths()
    assert "compose.prod.yml" in paths
    assert "reverse-proxy/dynamic/routes.yml" in paths
    declared = {Path(s["file"]).name for s in yaml.safe_load(
        (ROOT / "compose.prod.yml").read_text())["secrets"].values()}  # fmt: skip
    prometheus_missing = not (ROOT / "deploy" / "prometheus").is_dir()
    for path in sorted(paths):
        if path.startswith("secrets/") and path not in ("secrets/README.md", "secrets/generate.sh"):
            assert Path(path).name in declared, path  # made by generate.sh or by hand
            continue
        if prometheus_missing and path.startswith(("deploy/prometheus", "docs/metrics.md")):
            continue  # the metrics part's files (issue 6), merged separately
        assert (ROOT / path).exists(), path


def test_every_named_secret_file_is_declared() -> None:
    declared = {Path(s["file"]).name for s in yaml.safe_load(
        (ROOT / "compose.prod.yml").read_text())["secrets"].values()}  # fmt: skip
    section = DOC.split("## 2. Secrets", 1)[1].split("## 3.", 1)[0]
    named = set(re.findall(r"`([a-z_]+(?:password|keyfile|url|token))`", section))
    assert named
    assert named <= declared | {"mongodb_url"}


def test_every_named_setting_exists() -> None:
    known = {f"DRIFT_{name.upper()}" for name in Settings.model_fields}
    known |= {f"DRIFT_DASHBOARD_{name.upper()}" for name in DashboardSettings.model_fields}
    known |= {"DRIFT_SECRETS_DIR", "DRIFT_DASHBOARD_SECRETS_DIR"}
    for name in ("compose.yml", "compose.prod.yml", "compose.test.yml", ".env.sample"):
        known |= set(re.findall(r"\b(DRIFT_[A-Z0-9_]+)", (ROOT / name).read_text()))
    if "metrics_token" not in Settings.model_fields:
        known.add("DRIFT_METRICS_TOKEN")  # the metrics part's setting (issue 6)
    named = set(re.findall(r"\b(DRIFT_[A-Z0-9_]+)\b", DOC))
    assert named - known == set()
    for variable in re.findall(r"\b((?:ACME|PROMETHEUS|GRAFANA)_[A-Z_]+)\b", DOC):
        assert variable in (ROOT / ".env.sample").read_text(), variable
