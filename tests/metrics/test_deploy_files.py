"""deploy/prometheus/: the rules file is valid YAML with the expected groups, and every
metric it and the Grafana dashboard name is one our /metrics exposes after a real check
(promtool is not available here: checked by name). The compose override and provisioning
files point at what exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Api
from tests.metrics.conftest import scrape

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "rules" / "drift-monitor.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "drift-monitor.json"

#: What a PromQL identifier may be besides a metric name.
PROMQL_WORDS = {
    # functions used here (and common ones)
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "delta", "time",
    "histogram_quantile", "abs", "clamp_min", "clamp_max", "topk", "bottomk", "label_values",
    "absent", "changes", "resets", "avg_over_time", "max_over_time", "min_over_time",
    # keywords
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset",
}  # fmt: skip
#: Series Prometheus makes itself for every target (not in any exposition).
PROMETHEUS_SERIES = {"up"}


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: identifiers outside label matchers, strings
    and range brackets that are not functions, keywords, template variables or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set(re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {name for name in names if name not in PROMQL_WORDS}


def rule_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [(rule["alert"], rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query["query"]))
    return exprs


def test_metric_names_of_promql() -> None:
    expr = 'sum by (le, route) (rate(drift_monitor_x_bucket{status=~"5.."}[5m])) / up'
    assert metric_names(expr) == {"drift_monitor_x_bucket", "up"}
    assert metric_names("time() - drift_monitor_y > 26 * 3600") == {"drift_monitor_y"}


def test_rules_file_has_the_expected_groups_and_alerts() -> None:
    doc = yaml.safe_load(RULES.read_text())
    groups = {group["name"]: group for group in doc["groups"]}
    assert set(groups) == {"drift-monitor-drift", "drift-monitor-jobs", "drift-monitor-service"}
    alerts = {name for name, _ in rule_exprs()}
    # drift detected, a job failing or stale, the queue backing up, no run for a model
    assert {
        "DatasetDriftDetected",
        "JobsFailing",
        "DriftRunsFailing",
        "JobStale",
        "JobQueueBackingUp",
        "NoRunForModel",
    } <= alerts
    for group in doc["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]


async def test_rules_and_dashboard_name_only_our_metrics(
    worker_api: Api, checked: dict[str, Any]
) -> None:
    await worker_api.http.get("/health/live")  # an HTTP series, whatever ran before
    series = await scrape(worker_api)
    exposed = {name for name, _ in series}
    assert "drift_monitor_feature_p_value" in exposed  # the fixture's checks give them all
    assert "drift_monitor_feature_distance" in exposed
    for alert, expr in rule_exprs():
        unknown = metric_names(expr) - exposed - PROMETHEUS_SERIES
        assert not unknown, (alert, unknown)
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names, expr
        assert not names - exposed, (expr, names - exposed)


def test_prometheus_config_scrapes_with_the_token_file_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/metrics_token",
    }
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert config["global"]["scrape_timeout"] <= config["global"]["scrape_interval"]


def test_the_observability_profile_mounts_what_exists() -> None:
    prod = yaml.safe_load((ROOT / "compose.prod.yml").read_text())
    prometheus = prod["services"]["prometheus"]
    grafana = prod["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["observability"]
    assert prometheus["secrets"] == ["metrics_token"]
    assert "metrics_token" in prod["secrets"]
    assert "metrics_token" in prod["services"]["backend"]["secrets"]
    for service in (prometheus, grafana):
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    # Only loopback: Grafana is not published to the network; Prometheus not at all.
    assert all(p.startswith("127.0.0.1:") for p in grafana["ports"])
    assert "ports" not in prometheus
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((provisioning / "dashboards" / "drift-monitor.yml").read_text())
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
