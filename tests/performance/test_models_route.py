"""``GET .../performance/models``: the models a dashboard can pick, with
their task, classes and whether they have a labelled reference."""

from __future__ import annotations

from tests.conftest import Api

PREFIX = "/api/v1"


async def test_models_are_listed_by_name_with_task_classes_and_reference(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice")
    base = f"{PREFIX}/experiment/{exp['id']}"
    empty = await api.request("GET", base + "/performance/models", "alice")
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"items": []}
    batches = {
        "zeta": {"id": ["a", "b"], "y_pred": [0.5, 1.5]},
        "alpha": {"id": ["a"], "y_pred": ["x"], "proba_x": [0.7], "proba_y": [0.3]},
    }
    for model, columns in batches.items():
        made = await api.request(
            "POST",
            base + "/predictions",
            "alice",
            params={"model": model},
            json={"columns": columns},
        )
        assert made.status_code == 200, made.text
    reference = await api.request(
        "POST",
        base + "/performance-reference",
        "alice",
        params={"model": "alpha"},
        json={"columns": {"y_true": ["x", "y"], "y_pred": ["x", "x"]}},
    )
    assert reference.status_code == 200, reference.text
    answer = (await api.request("GET", base + "/performance/models", "alice")).json()
    items = answer["items"]
    assert [m["model"] for m in items] == ["alpha", "zeta"]
    assert items[0]["task"] == "classification"
    assert sorted(items[0]["classes"]) == ["x", "y"]
    assert items[0]["reference"] is True
    assert items[1] == {**items[1], "task": "regression", "classes": [], "reference": False}
    assert items[1]["created_at"].endswith("+00:00")
    # Nobody else sees a private experiment's models.
    await api.register("bob")
    hidden = await api.request("GET", base + "/performance/models", "bob")
    assert hidden.status_code == 404
