"""SageMaker Model Monitor / Flare baselines through the API: multipart import, exports,
and a round trip that keeps what the format holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.baselines.test_flare import flare_files  # noqa: F401 (a fixture)
from tests.checks.test_check_api import checked, frame  # noqa: F401 (a fixture)
from tests.conftest import Api


async def test_export_then_import_round_trip(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    api, exp, baseline = checked
    base = f"/api/v1/experiment/{exp['id']}/baseline"
    statistics = await api.request("GET", f"{base}/{baseline['id']}/statistics.json", "alice")
    constraints = await api.request("GET", f"{base}/{baseline['id']}/constraints.json", "alice")
    assert statistics.status_code == constraints.status_code == 200
    stats = statistics.json()
    assert stats["version"] == 0
    assert stats["dataset"]["item_count"] == 3000
    x = next(f for f in stats["features"] if f["name"] == "x")
    assert x["inferred_type"] == "Fractional"
    assert x["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    assert constraints.json()["monitoring_config"]["distribution_constraints"]

    r = await api.request(
        "POST",
        base,
        "alice",
        params={"name": "imported"},
        files={
            "statistics": ("statistics.json", statistics.content, "application/json"),
            "constraints": ("constraints.json", constraints.content, "application/json"),
        },
    )
    assert r.status_code == 201, r.text
    imported = r.json()
    assert imported["source"] == "sagemaker"
    assert imported["row_count"] == baseline["row_count"]
    before = {f["name"]: f for f in baseline["features"]}
    for feature in imported["features"]:
        original = before[feature["name"]]
        assert feature["completeness"] == pytest.approx(original["completeness"])
        for key in ("min", "max", "mean", "std"):
            if original[key] is not None:
                assert feature[key] == pytest.approx(original[key], rel=1e-9)

    # A check against the imported baseline works like one against the original.
    check = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "baseline": imported["id"], "wait": 60},
        json={"columns": frame(41, 2000, shift=0.8)},
    )
    assert check.status_code == 200, check.text
    assert "x" in check.json()["parameters"]["check"]["drifted_features"]


async def test_flare_files_import_through_the_api(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],  # noqa: F811
    flare_files: tuple[bytes, bytes],  # noqa: F811
) -> None:
    api, exp, _ = checked
    statistics, constraints = flare_files
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/baseline",
        "alice",
        params={"name": "flare"},
        files={
            "statistics": ("statistics.json", statistics),
            "constraints": ("c.json", constraints),
        },
    )
    assert r.status_code == 201, r.text
    names = {f["name"] for f in r.json()["features"]}
    assert {"age", "income", "balance", "city"} <= names
    check = await api.request(
        "POST",
        f"/api/v1/experiment/{exp['id']}/check",
        "alice",
        params={"model": "m1", "baseline": r.json()["id"], "wait": 60},
        json={
            "columns": {
                "age": [30, 40, -1],
                "income": [100.0, 90.0, 1e9],
                "balance": [0.0, 1.0, 2.0],
                "city": ["Paris", "Atlantis", "Rome"],
            }
        },
    )
    assert check.status_code == 200, check.text
    report = await api.request(
        "GET", f"/api/v1/experiment/{exp['id']}/drift/{check.json()['id']}/report", "alice"
    )
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in report.json()["violations"]}
    assert ("city", "categorical_values_check") in kinds
    assert ("income", "bound_check") in kinds


async def test_bad_sagemaker_uploads_are_422(
    checked: tuple[Api, dict[str, Any], dict[str, Any]],  # noqa: F811
) -> None:
    api, exp, _ = checked
    url = f"/api/v1/experiment/{exp['id']}/baseline"
    missing = await api.request("POST", url, "alice", files={"constraints": ("c.json", b"{}")})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "statistics"
    broken = await api.request("POST", url, "alice", files={"statistics": ("s.json", b"{nope")})
    assert broken.status_code == 422
    wrong = await api.request(
        "POST",
        url,
        "alice",
        files={"statistics": ("s.json", json.dumps({"version": 0, "features": "x"}).encode())},
    )
    assert wrong.status_code == 422
