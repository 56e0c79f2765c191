"""HTTP metrics by route template (never the raw path), the token outside development, and
``drift_monitor_up 0`` with the process's own metrics while MongoDB cannot be reached."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess, free_port
from drift_backend.main import create_app
from drift_backend.settings import ConfigurationError, Settings

from tests.conftest import Api, _drop
from tests.metrics.conftest import parse, scrape, select

TOKEN = "metrics-token-for-the-tests-0123456789"


def settings_of(**values: Any) -> Settings:
    """Settings as the environment gives them (strings, validated by pydantic)."""
    return Settings(**values)


async def test_requests_counted_by_route_template_and_status(api: Api) -> None:
    exp = await api.experiment("alice") if await api.register("alice") else None
    assert exp is not None
    missing = str(uuid.uuid4())
    for experiment_id in (exp["id"], missing):
        await api.request("GET", f"/api/v1/experiment/{experiment_id}", "alice")
    await api.http.get(f"/no/such/path/{missing}")
    await api.http.request("BREW", f"/api/v1/experiment/{missing}")
    series = await scrape(api)
    requests = select(series, "drift_monitor_http_requests_total")
    routes = {dict(labels)["route"] for labels in requests}
    template = "/api/v1/experiment/{experiment_id}"
    assert template in routes
    assert "unmatched" in routes
    methods = {dict(labels)["method"] for labels in requests}
    assert "other" in methods
    assert "BREW" not in methods
    assert not any(exp["id"] in route or missing in route for route in routes), routes
    by_status = {
        dict(labels)["status"]: value
        for labels, value in select(
            series, "drift_monitor_http_requests_total", route=template, method="GET"
        ).items()
    }
    assert by_status == {"200": 1.0, "404": 1.0}
    (count,) = select(
        series, "drift_monitor_http_request_duration_seconds_count", route=template, method="GET"
    ).values()
    assert count == 2.0
    # The process's own collectors come along (per process, as the HTTP ones).
    assert select(series, "process_cpu_seconds_total") or select(series, "python_info")


async def test_a_413_before_routing_still_has_its_route(api: Api) -> None:
    r = await api.http.post(
        "/api/v1/experiment/search", content=b"x" * (api.settings.max_body_bytes + 1)
    )
    assert r.status_code == 413
    series = await scrape(api)
    found = select(series, "drift_monitor_http_requests_total", route="/api/v1/experiment/search")
    assert {dict(k)["status"] for k in found} == {"413"}


async def test_development_without_a_token_is_open(api: Api) -> None:
    assert api.settings.metrics_token is None
    r = await api.http.get("/metrics")
    assert r.status_code == 200


@pytest.fixture
async def app_client() -> AsyncIterator[Callable[..., Any]]:
    """Build a backend from whole settings; ``drop=True`` drops its database afterwards
    (once the backend stopped: its event tailer holds the database until then)."""
    made: list[tuple[Any, Settings | None]] = []

    async def build(settings: Settings, *, drop: bool = False) -> httpx2.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        made.append((lifespan, settings if drop else None))
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
        )

    yield build
    for lifespan, settings in made:
        await lifespan.__aexit__(None, None, None)
        if settings is not None:
            await _drop(settings)


@pytest.fixture
def production_api(mongodb: ManagedProcess, app_client: Callable[..., Any]) -> Callable[..., Any]:
    """A backend in production mode (on the test database server) with a metrics token."""

    async def build(**overrides: Any) -> httpx2.AsyncClient:
        settings = settings_of(
            mode="production",
            mongodb_url=mongodb.url,
            mongodb_database=f"test_{uuid.uuid4().hex[:12]}",
            trusted_issuers=["https://issuer.example.org"],
            **overrides,
        )
        client: httpx2.AsyncClient = await app_client(settings, drop=True)
        return client

    return build


async def test_production_needs_the_token(production_api: Callable[..., Any]) -> None:
    http = await production_api(metrics_token=TOKEN)
    r = await http.get("/metrics")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer ")
    for wrong in ("Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x", "Basic " + TOKEN, "Bearer"):
        r = await http.get("/metrics", headers={"Authorization": wrong})
        assert r.status_code == 401, wrong
        assert TOKEN not in r.text
    r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert select(parse(r.text), "drift_monitor_up") == {(): 1.0}


async def test_development_with_a_token_needs_it(api_factory: Any) -> None:
    api = await api_factory(metrics_token=TOKEN)
    assert (await api.http.get("/metrics")).status_code == 401
    await scrape(api, Authorization=f"Bearer {TOKEN}")


async def test_token_from_a_file(production_api: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "metrics_token"
    path.write_text(TOKEN + "\n")
    http = await production_api(metrics_token_file=path)
    assert (await http.get("/metrics")).status_code == 401
    r = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200


def test_an_empty_token_is_no_token() -> None:
    assert settings_of(metrics_token="").metrics_token is None
    token = settings_of(metrics_token=f" {TOKEN}\n").metrics_token
    assert token is not None
    assert token.get_secret_value() == TOKEN


def test_token_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metrics_token_file"):
        settings_of(metrics_token_file=tmp_path / "absent")


@pytest.mark.parametrize(
    "token", [None, "short", "dev-only-metrics-token-from-the-sandbox"], ids=str
)
def test_production_refuses_to_start_without_a_fit_token(token: str | None) -> None:
    settings = settings_of(
        mode="production",
        mongodb_url="mongodb://drift:s3cret@mongo:27017/",
        trusted_issuers=["https://issuer.example.org"],
        metrics_token=token,
    )
    with pytest.raises(ConfigurationError, match="METRICS_TOKEN"):
        create_app(settings)


async def test_database_down_answers_up_zero_with_the_process_metrics(
    app_client: Callable[..., Any],
) -> None:
    # Nothing listens on this port: every MongoDB operation fails within the bound.
    settings = settings_of(
        mode="development",
        mongodb_url=f"mongodb://127.0.0.1:{free_port()}/",
        mongodb_timeout_seconds=0.5,
        metrics_read_timeout_seconds=0.5,
        startup_index_wait_seconds=0,
    )
    http = await app_client(settings)
    await http.get("/health/live")
    r = await http.get("/metrics")
    assert r.status_code == 200, r.text
    series = parse(r.text)
    assert select(series, "drift_monitor_up") == {(): 0.0}
    assert select(series, "drift_monitor_runs") == {}
    assert select(series, "drift_monitor_http_requests_total", route="/health/live")


def test_a_worker_needs_no_metrics_token() -> None:
    from drift_backend.cli import worker_production_problems

    settings = settings_of(
        mode="production",
        mongodb_url="mongodb://drift:s3cret@mongo:27017/",
        trusted_issuers=["https://issuer.example.org"],
    )
    assert any("METRICS_TOKEN" in problem for problem in settings.production_problems())
    assert worker_production_problems(settings) == []
    # What a worker does need is still checked.
    dev_url = settings_of(mode="production", mongodb_url="mongodb://drift:dev-only-x@mongo:27017/")
    assert worker_production_problems(dev_url)
