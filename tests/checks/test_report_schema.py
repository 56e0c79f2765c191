"""The report route declares its response model, so the OpenAPI document describes reports."""

from __future__ import annotations

from tests.conftest import Api


async def test_openapi_describes_the_report(api: Api) -> None:
    r = await api.http.get("/api/v1/openapi.json")
    assert r.status_code == 200
    document = r.json()
    route = document["paths"]["/api/v1/experiment/{experiment_id}/drift/{drift_id}/report"]
    schema = route["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Report"}
    report = document["components"]["schemas"]["Report"]
    assert {"dataset_drift", "drift_share", "features", "mode"} <= set(report["properties"])
    assert "FeatureReport" in document["components"]["schemas"]
