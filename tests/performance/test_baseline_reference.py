"""A labelled performance reference from a baseline upload (opt-in ``target``,
``prediction``, ``proba_prefix``): one upload stores the baseline (without those columns)
and the model's reference; bad options are a 4xx naming them, and store nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from tests.conftest import Api

PREFIX = "/api/v1"


@pytest.fixture
async def setup(api: Api) -> tuple[Api, str]:
    await api.register("alice")
    exp = await api.experiment("alice")
    return api, f"{PREFIX}/experiment/{exp['id']}"


def upload(n: int = 400) -> dict[str, Any]:
    rng = np.random.default_rng(4)
    score = np.round(rng.random(n), 3)
    label = (rng.random(n) < score**2).astype(int)  # overconfident: calibration helps
    return {
        "age": rng.normal(40, 10, n).tolist(),
        "city": rng.choice(["a", "b"], n).tolist(),
        "label": label.tolist(),
        "pred": (score > 0.5).astype(int).tolist(),
        "score_0": (1 - score).tolist(),
        "score_1": score.tolist(),
    }


async def post(api: Api, base: str, params: dict[str, str], columns: dict[str, Any]) -> Any:
    return await api.request(
        "POST", base + "/baseline", "alice", params=params, json={"columns": columns}
    )


async def test_one_upload_stores_the_baseline_and_the_reference(setup: tuple[Api, str]) -> None:
    api, base = setup
    columns = upload()
    params = {"model": "m", "target": "label", "prediction": "pred", "proba_prefix": "score_"}
    r = await post(api, base, params, columns)
    assert r.status_code == 201, r.text
    body = r.json()
    # The reference's columns are not profiled as features.
    assert [f["name"] for f in body["features"]] == ["age", "city"]
    reference = body["performance_reference"]
    assert reference["n"] == 400
    y, pred = np.array(columns["label"]), np.array(columns["pred"])
    assert reference["metrics"]["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert reference["metrics"]["roc_auc"]["value"] == pytest.approx(
        skm.roc_auc_score(y, columns["score_1"])
    )
    # The performance service holds it: the model's windows are read against it, and its
    # calibration is used for the estimates.
    r = await api.request(
        "POST",
        base + "/predictions",
        "alice",
        params={"model": "m"},
        json={
            "columns": {
                "id": ["x", "y"],
                "y_pred": [1, 0],
                "proba_0": [0.3, 0.8],
                "proba_1": [0.7, 0.2],
            }
        },
    )
    assert r.status_code == 200, r.text
    r = await api.request("GET", base + "/performance", "alice", params={"model": "m"})
    assert r.status_code == 200, r.text
    performance = r.json()
    assert performance["reference"]["n"] == 400
    assert performance["classes"] == ["0", "1"]
    assert performance["windows"][0]["estimated"]["calibrated"] is True
    # Without the options, a baseline as ever: every column a feature, no reference.
    r = await post(api, base, {}, columns)
    assert r.status_code == 201, r.text
    assert len(r.json()["features"]) == 6
    assert r.json()["performance_reference"] is None


async def test_bad_options_name_the_field_and_store_nothing(setup: tuple[Api, str]) -> None:
    api, base = setup
    columns = upload(50)
    bad_rows = {**columns, "score_0": [0.9] * 50}  # rows no longer sum to 1
    cases: list[tuple[dict[str, str], dict[str, Any], str]] = [
        ({"model": "m", "target": "label"}, columns, "prediction"),
        ({"model": "m", "prediction": "pred"}, columns, "target"),
        ({"target": "label", "prediction": "pred"}, columns, "model"),
        ({"model": "m", "target": "nope", "prediction": "pred"}, columns, "target"),
        ({"model": "m", "target": "label", "prediction": "label"}, columns, "prediction"),
        (
            {"model": "m", "target": "label", "prediction": "pred", "proba_prefix": "p_"},
            columns,
            "proba_prefix",
        ),
        (
            {"model": "m", "target": "label", "prediction": "pred", "proba_prefix": "score_"},
            bad_rows,
            "proba_*",
        ),
        (
            {"model": "m", "target": "label", "prediction": "pred", "proba_prefix": "score_"},
            {k: columns[k] for k in ("label", "pred", "score_0", "score_1")},
            "columns",
        ),
    ]
    for params, body, field in cases:
        r = await post(api, base, params, body)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field, params
    r = await api.request("GET", base + "/baseline", "alice")
    assert r.json() == []
    r = await api.request("GET", base + "/performance", "alice", params={"model": "m"})
    assert r.status_code == 404  # no model was made either
