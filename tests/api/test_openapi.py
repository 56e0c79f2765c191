"""What the served OpenAPI document promises about errors, and that real answers keep it
(schemathesis checks the same at scale in test_schemathesis.py)."""

from __future__ import annotations

from typing import Any

from drift_backend.api.responses import ErrorBody

from tests.conftest import Api

API = "/api/v1"


async def _document(api: Api) -> dict[str, Any]:
    response = await api.request("GET", f"{API}/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _error_ref(response: dict[str, Any]) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"])


async def test_every_operation_documents_the_errors_its_construction_implies(api: Api) -> None:
    document = await _document(api)
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "status", "message"}
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is not what we answer
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        expected = {"500"}
        if operation.get("security"):
            expected |= {"401", "403", "503"}
        if operation.get("parameters") or operation.get("requestBody"):
            expected.add("422")
        if operation.get("requestBody"):
            expected |= {"400", "413"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            assert _error_ref(responses[status]).endswith("/ErrorBody"), (method, path, status)


async def test_routes_reading_a_token_declare_the_bearer_scheme(api: Api) -> None:
    document = await _document(api)
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    secured = {f"{m} {p}" for m, p, op in _operations(document) if op.get("security")}
    assert f"GET {API}/experiment/{{experiment_id}}" in secured
    assert f"POST {API}/experiment/{{experiment_id}}/check" in secured
    assert "GET /health/live" not in secured


async def test_route_specific_statuses_and_headers_are_documented(api: Api) -> None:
    document = await _document(api)
    paths = document["paths"]
    assert {"404", "409"} <= set(paths[f"{API}/experiment/{{experiment_id}}"]["put"]["responses"])
    assert "409" in paths[f"{API}/user"]["post"]["responses"]
    upload = paths[f"{API}/experiment/{{experiment_id}}/baseline"]["post"]
    assert {"404", "413", "415"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "text/csv" in upload["requestBody"]["content"]
    for search in (
        "/experiment/search",
        "/user/search",
        "/experiment/{experiment_id}/drift/search",
    ):
        headers = paths[f"{API}{search}"]["post"]["responses"]["200"]["headers"]
        assert "X-Pagination" in headers
    unauthorized = paths[f"{API}/user/self"]["get"]["responses"]["401"]
    assert "WWW-Authenticate" in unauthorized["headers"]


async def test_error_answers_have_the_documented_shape(api: Api) -> None:
    await api.register("alice")
    answers = [
        await api.request("GET", f"{API}/user/self"),  # 401: no token
        await api.request("GET", f"{API}/experiment/nope", "alice"),  # 404
        await api.request("POST", f"{API}/experiment", "alice", json={"name": ""}),  # 422
        await api.request(
            "POST",
            f"{API}/experiment",
            "alice",
            content=b"\xff{",
            headers={"Content-Type": "application/json"},
        ),  # 400: not JSON at all
    ]
    assert [answer.status_code for answer in answers] == [401, 404, 422, 400]
    for answer in answers:
        body = ErrorBody.model_validate(answer.json())
        assert body.status == answer.status_code
    assert ErrorBody.model_validate(answers[2].json()).errors
