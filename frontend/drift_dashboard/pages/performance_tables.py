"""The Performance tab's tables, built from the backend's performance answer (``GET
/experiment/{id}/performance``, docs/performance.md): pure functions, no I/O.

Each table is what the page shows under its chart *and* what its CSV link downloads: one
:class:`Table` renders both, so the two cannot disagree. Cells hold the API's values as they
are (:func:`raw` writes them for ``data-value`` and the CSV; the page shows them rounded).
Metrics (realised and estimated) are read generically by name: a metric the backend adds
shows up without a change here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

#: The metric drawn by default, per task (docs/performance.md's tables).
DEFAULT_METRIC = {"classification": "accuracy", "regression": "mae"}


@dataclass
class Column:
    key: str
    label: str
    #: How the page shows a cell: "number", "time", "flag" (yes/no), "text", "run" (a
    #: link to the drift run's page), "realised" (a number marked provisional in an
    #: incomplete row).
    kind: str = "number"


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    #: Per row, whether it is final (complete window): incomplete rows are marked.
    complete: list[bool] = field(default_factory=list)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow([raw(v) for v in row])
        return out.getvalue()


def raw(value: Any) -> str:
    """A cell as the API gave it: empty for null, ``true``/``false``, numbers in full."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        # A structured field the backend may add to a decision: JSON, not Python's repr.
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _value(item: Any) -> Any:
    """A metric's value (``{value, ...}``), or None when absent or not a metric."""
    return item.get("value") if isinstance(item, dict) else None


def metric_names(answer: dict[str, Any]) -> list[str]:
    """Every realised metric of the answer (windows and reference), in the backend's order."""
    names: dict[str, None] = {}
    reference = answer.get("reference") or {}
    for source in [reference.get("metrics") or {}] + [
        w.get("metrics") or {} for w in answer.get("windows", [])
    ]:
        names.update(dict.fromkeys(source))
    return list(names)


def estimated_names(answer: dict[str, Any]) -> list[str]:
    """The metrics some window estimates (the ``estimated`` object's ``{value, low, high}``
    entries; its flags such as ``calibrated`` are not metrics)."""
    names: dict[str, None] = {}
    for window in answer.get("windows", []):
        for name, item in (window.get("estimated") or {}).items():
            if isinstance(item, dict) and "value" in item:
                names[name] = None
    return list(names)


def pick_metric(answer: dict[str, Any], wanted: str) -> str:
    names = metric_names(answer) + [n for n in estimated_names(answer) if n]
    if wanted in names:
        return wanted
    default = DEFAULT_METRIC.get(str(answer.get("task")), "")
    if default in names or not names:
        return default
    return names[0]


def _completeness(answer: dict[str, Any]) -> list[bool]:
    return [bool(w.get("complete")) for w in answer.get("windows", [])]


def metric_table(answer: dict[str, Any], metric: str) -> Table:
    """One metric over time: realised (final only in complete windows), estimated with its
    band, and the reference's value."""
    reference = _value(((answer.get("reference") or {}).get("metrics") or {}).get(metric))
    table = Table(
        [
            Column("start", "Window start (UTC)", "time"),
            Column("complete", "Complete", "flag"),
            Column("coverage", "Coverage"),
            Column("realised", "Realised"),
            Column("estimated", "Estimated"),
            Column("estimated_low", "Estimated, low"),
            Column("estimated_high", "Estimated, high"),
            Column("reference", "Reference"),
            Column("degraded", "Degraded", "flag"),
            Column("reason", "Why no value", "text"),
        ],
        complete=_completeness(answer),
    )
    for w in answer.get("windows", []):
        realised = (w.get("metrics") or {}).get(metric) or {}
        estimate = (w.get("estimated") or {}).get(metric)
        estimate = estimate if isinstance(estimate, dict) else {}
        reasons = [r for r in (realised.get("reason"), estimate.get("reason")) if r]
        table.rows.append(
            [
                w["start"],
                bool(w.get("complete")),
                w.get("coverage"),
                realised.get("value"),
                estimate.get("value"),
                estimate.get("low"),
                estimate.get("high"),
                reference,
                (_decision_of(w, metric) or {}).get("degraded"),
                "; ".join(dict.fromkeys(reasons)) or None,
            ]
        )
    return table


def coverage_table(answer: dict[str, Any]) -> Table:
    """Label coverage and lag per window, against the coverage a window needs."""
    table = Table(
        [
            Column("start", "Window start (UTC)", "time"),
            Column("n_predicted", "Predicted"),
            Column("n_labelled", "Labelled"),
            Column("coverage", "Coverage"),
            Column("threshold", "Needed"),
            Column("complete", "Complete", "flag"),
            Column("lag_mean_seconds", "Mean label lag (s)"),
            Column("lag_max_seconds", "Longest label lag (s)"),
        ],
        complete=_completeness(answer),
    )
    for w in answer.get("windows", []):
        lag = w.get("label_lag") or {}
        table.rows.append(
            [
                w["start"],
                w.get("n_predicted"),
                w.get("n_labelled"),
                w.get("coverage"),
                answer.get("min_coverage"),
                bool(w.get("complete")),
                lag.get("mean_seconds"),
                lag.get("max_seconds"),
            ]
        )
    return table


def all_metrics_table(answer: dict[str, Any]) -> Table:
    """Every metric of every window: realised values, then each estimate with its band."""
    names = metric_names(answer)
    estimated = estimated_names(answer)
    flags: dict[str, None] = {}
    for w in answer.get("windows", []):
        for name, item in (w.get("estimated") or {}).items():
            if not isinstance(item, dict):
                flags[name] = None
    columns = [
        Column("start", "Window start (UTC)", "time"),
        Column("complete", "Complete", "flag"),
    ]
    columns += [Column(name, name) for name in names]
    for name in estimated:
        columns += [
            Column(f"estimated_{name}", f"{name}, estimated"),
            Column(f"estimated_{name}_low", f"{name}, est. low"),
            Column(f"estimated_{name}_high", f"{name}, est. high"),
        ]
    columns += [Column(f"estimated_{flag}", f"estimate {flag}", "flag") for flag in flags]
    table = Table(columns, complete=_completeness(answer))
    for w in answer.get("windows", []):
        metrics = w.get("metrics") or {}
        estimates = w.get("estimated") or {}
        row: list[Any] = [w["start"], bool(w.get("complete"))]
        row += [_value(metrics.get(name)) for name in names]
        for name in estimated:
            item = estimates.get(name)
            item = item if isinstance(item, dict) else {}
            row += [item.get("value"), item.get("low"), item.get("high")]
        row += [estimates.get(flag) for flag in flags]
        table.rows.append(row)
    return table


DECISION_FIELDS = ("degraded", "metric", "p_value", "reason")


def _decision_of(window: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The window's decision on ``metric``: from ``decisions`` (one per metric decided on,
    where the backend gives them), else the main ``decision`` when it is on that metric."""
    per_metric = (window.get("decisions") or {}).get(metric)
    if isinstance(per_metric, dict):
        return per_metric
    main = window.get("decision") or {}
    return main if main.get("metric") == metric else None


def decisions_table(answer: dict[str, Any]) -> Table:
    """The decision of each window (degraded or not, on which metric, why not decided); any
    further field the backend adds gets its own column, and each metric decided on apart
    (``decisions``) a "degraded" column of its own."""
    extra: dict[str, None] = {}
    per_metric: dict[str, None] = {}
    for w in answer.get("windows", []):
        for key in w.get("decision") or {}:
            if key not in DECISION_FIELDS:
                extra[key] = None
        per_metric.update(dict.fromkeys(w.get("decisions") or {}))
    columns = [
        Column("start", "Window start (UTC)", "time"),
        Column("complete", "Complete", "flag"),
        Column("degraded", "Degraded", "flag"),
        Column("metric", "Metric", "text"),
        Column("p_value", "p-value"),
        Column("reason", "Why no decision", "text"),
    ]
    columns += [Column(key, key.replace("_", " "), "auto") for key in extra]
    columns += [Column(f"degraded_{name}", f"Degraded on {name}", "flag") for name in per_metric]
    table = Table(columns, complete=_completeness(answer))
    for w in answer.get("windows", []):
        decision = w.get("decision") or {}
        row = [w["start"], bool(w.get("complete"))]
        row += [decision.get(key) for key in DECISION_FIELDS]
        row += [decision.get(key) for key in extra]
        row += [((w.get("decisions") or {}).get(name) or {}).get("degraded") for name in per_metric]
        table.rows.append(row)
    return table


def matrix_windows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The windows that have a confusion matrix, newest first."""
    return [w for w in reversed(answer.get("windows", [])) if w.get("confusion_matrix")]


def pick_window(answer: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    """The window whose matrix to show: the one asked for (by its start), else the newest
    complete one, else the newest."""
    windows = matrix_windows(answer)
    for w in windows:
        if w["start"] == wanted:
            return w
    complete = [w for w in windows if w.get("complete")]
    chosen = complete or windows
    return chosen[0] if chosen else None


def confusion_table(window: dict[str, Any] | None) -> Table:
    """Rows: the true class; columns: the predicted class (the API's orientation)."""
    matrix = (window or {}).get("confusion_matrix") or {"labels": [], "matrix": []}
    labels = [str(label) for label in matrix["labels"]]
    table = Table([Column("true", "True \\ predicted", "text")])
    table.columns += [Column(f"predicted_{label}", label) for label in labels]
    for label, counts in zip(labels, matrix["matrix"], strict=False):
        table.rows.append([label, *counts])
    return table


def runs_table(page: dict[str, Any]) -> Table:
    """One page of the model's metrics per drift run (``GET .../performance/runs``, newest
    run first): its predictions, labels, coverage and completeness, the task's main metric
    (accuracy, or the regression MAE) and, when some run of the page has one, its estimate
    before labels."""
    metric = DEFAULT_METRIC.get(str(page.get("task")), "")
    runs = page.get("runs", [])
    estimated = any(isinstance((r.get("estimated") or {}).get(metric), dict) for r in runs)
    columns = [
        Column("run_id", "Run", "run"),
        Column("run_created_at", "Created (UTC)", "time"),
        Column("n_predicted", "Predicted"),
        Column("n_labelled", "Labelled"),
        Column("coverage", "Coverage"),
        Column("complete", "Complete", "flag"),
        Column(metric, metric, "realised"),
    ]
    if estimated:
        columns.append(Column(f"estimated_{metric}", f"{metric}, estimated"))
    table = Table(columns, complete=[bool(r.get("complete")) for r in runs])
    for r in runs:
        row = [
            r["run_id"],
            r["run_created_at"],
            r.get("n_predicted"),
            r.get("n_labelled"),
            r.get("coverage"),
            bool(r.get("complete")),
            _value((r.get("metrics") or {}).get(metric)),
        ]
        if estimated:
            row.append(_value((r.get("estimated") or {}).get(metric)))
        table.rows.append(row)
    return table


TABLES = ("metric", "coverage", "metrics", "decisions", "confusion")


def build(answer: dict[str, Any], kind: str, metric: str, at: str) -> Table:
    """The table ``kind`` of the answer (what a CSV link asks for)."""
    if kind == "metric":
        return metric_table(answer, pick_metric(answer, metric))
    if kind == "coverage":
        return coverage_table(answer)
    if kind == "metrics":
        return all_metrics_table(answer)
    if kind == "decisions":
        return decisions_table(answer)
    return confusion_table(pick_window(answer, at))
