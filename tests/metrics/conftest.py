"""A backend with an embedded worker for the module (checks end to end), and helpers to
scrape ``/metrics`` and parse it with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from drift_backend.devstack.services import ManagedProcess
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api, in_process_backend


@pytest.fixture(scope="module")
async def worker_api(
    mongodb: ManagedProcess, issuer: Any, oidc_provider: ManagedProcess
) -> AsyncIterator[Api]:
    # No cache: each scrape here must see what the test just wrote.
    async with in_process_backend(
        mongodb,
        issuer,
        oidc_provider,
        embedded_worker=True,
        job_lease_seconds=5,
        metrics_cache_seconds=0,
    ) as api:
        await api.register("alice")
        yield api


def frame(seed: int, n: int, shift: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(shift, 1.0, n).tolist(),
        "y": rng.exponential(2.0, n).tolist(),
        "c": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]).tolist(),
    }


async def baseline(api: Api, experiment_id: str, model: str, n: int = 3000) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{experiment_id}/baseline",
        "alice",
        params={"name": "train", "model": model},
        json={"columns": frame(1, n)},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def check(api: Api, experiment_id: str, model: str, shift: float) -> dict[str, Any]:
    r = await api.request(
        "POST",
        f"/api/v1/experiment/{experiment_id}/check",
        "alice",
        params={"model": model, "wait": 60},
        json={"columns": frame(2, 2000, shift=shift)},
    )
    assert r.status_code == 200, r.text
    assert r.json()["job_status"] == "Completed", r.text
    return dict(r.json())


@pytest.fixture(scope="module")
async def checked(worker_api: Api) -> dict[str, Any]:
    """One experiment, two models: m1's newest check drifts (after a clean one), m2's not."""
    api = worker_api
    exp = await api.experiment("alice")
    # One drifted feature of three is dataset drift at this share.
    r = await api.request(
        "PATCH",
        f"/api/v1/experiment/{exp['id']}",
        "alice",
        json={"drift_config": {"drift_share": 0.3}},
    )
    assert r.status_code == 200, r.text
    # m1's 3,000 reference rows get distance tests, m2's 800 p-value tests (automatic choice).
    await baseline(api, exp["id"], "m1")
    await baseline(api, exp["id"], "m2", n=800)
    await check(api, exp["id"], "m1", shift=0.0)
    drifting = await check(api, exp["id"], "m1", shift=0.6)
    clean = await check(api, exp["id"], "m2", shift=0.0)
    reports = {}
    assert drifting["drift_detected"] is True
    assert clean["drift_detected"] is False
    for model, run in (("m1", drifting), ("m2", clean)):
        r = await api.request(
            "GET", f"/api/v1/experiment/{exp['id']}/drift/{run['id']}/report", "alice"
        )
        assert r.status_code == 200, r.text
        reports[model] = r.json()
    return {"experiment": exp, "runs": {"m1": drifting, "m2": clean}, "reports": reports}


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Series:
    """Every sample as ``(name, sorted labels) -> value``, read by prometheus_client."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def select(series: Series, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` whose labels include ``labels``."""
    return {
        key: value
        for (sample_name, key), value in series.items()
        if sample_name == name and all((k, v) in key for k, v in labels.items())
    }


async def scrape(api: Api, **headers: str) -> Series:
    r = await api.http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return parse(r.text)


@pytest.fixture
async def raw_db() -> AsyncIterator[Any]:
    """``raw_db(api)``: a PyMongo handle on the api's database, to call a source directly."""
    from drift_backend.store.database import connect

    clients: list[Any] = []

    def open_db(api: Api) -> Any:
        client = connect(api.settings.mongodb_url.get_secret_value())
        clients.append(client)
        return client[api.settings.mongodb_database]

    yield open_db
    for client in clients:
        await client.close()
