"""The numbers behind each chart as CSV (``?format=csv``), for the dashboard's CSV links."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from drift_backend.schemas import _iso

#: A cell a spreadsheet would run as a formula (OWASP "CSV injection"): feature names, models
#: and kinds are user-chosen, so such a string gets a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def timeline(data: dict[str, Any]) -> str:
    columns = ("start", "drifted", "not_drifted", "failed", "running")
    return render(columns, ([b[c] for c in columns] for b in data["buckets"]))


def feature_history(data: dict[str, Any]) -> str:
    columns = (
        "start",
        "runs",
        "drifted",
        "p_value_min",
        "p_value_adjusted_min",
        "distance_max",
        "threshold",
    )
    return render(
        ("feature", *columns),
        ([data["feature"], *(b[c] for c in columns)] for b in data["buckets"]),
    )


def heatmap(data: dict[str, Any]) -> str:
    runs = {run["run_id"]: run for run in data["runs"]}
    columns = ("feature", "test", "p_value", "p_value_adjusted", "distance", "drifted")
    return render(
        ("run_id", "created_at", "model", *columns),
        (
            [
                cell["run_id"],
                runs[cell["run_id"]]["created_at"],
                runs[cell["run_id"]]["model"],
                *(cell[c] for c in columns),
            ]
            for cell in data["cells"]
        ),
    )


def violations(data: dict[str, Any]) -> str:
    kinds = data["kinds"]
    return render(
        ("start", "checks", "total", *kinds),
        (
            [b["start"], b["checks"], b["total"], *(b["kinds"].get(kind, 0) for kind in kinds)]
            for b in data["buckets"]
        ),
    )
