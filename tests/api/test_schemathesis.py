"""The API against its own OpenAPI document: schemathesis over every operation of a live
backend (real uvicorn, SecantusDB, the test JWT issuer), failing on any finding.

Generated path parameters are mostly swapped for the ids of a real experiment, drift run
and baseline, so the checks reach past the 404s; the rest stay random and hit the 404s.
Bounded for CI: a fixed seed, deterministic generation, a few fuzzed examples per
operation, no shrinking.
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import schemathesis
from drift_backend.devstack.services import ManagedProcess
from drift_backend.main import create_app
from drift_backend.settings import Settings
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Fuzzed examples per operation, on top of the coverage phase's boundary cases.
MAX_EXAMPLES = 50
SEED = 20261202
API = "/api/v1"


def _csv(columns: dict[str, list[Any]]) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), sink)
    return sink.getvalue()


REFERENCE = _csv({"x": [float(i % 17) for i in range(200)], "c": ["a", "b"] * 100})


@dataclass
class World:
    """The caller and the real resources generated path parameters are swapped for."""

    url: str
    headers: dict[str, str]
    user_id: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def _http(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, headers=self.headers, timeout=60)

    def _post(self, http: httpx2.Client, path: str, expect: int, **kwargs: Any) -> str:
        response = http.post(f"{API}/experiment/{self.ids['experiment_id']}{path}", **kwargs)
        assert response.status_code == expect, response.text
        return str(response.json()["id"])

    def _baseline(self, http: httpx2.Client) -> None:
        csv = {"content": REFERENCE, "headers": {"Content-Type": "text/csv"}}
        self.ids["baseline_id"] = self._post(http, "/baseline", 201, params={"model": "m"}, **csv)

    def _drift(self, http: httpx2.Client) -> None:
        self.ids["drift_id"] = self._post(http, "/drift", 201, json={"model": "m"})

    def _alerts(self, http: httpx2.Client) -> None:
        """Alerts: a rule and a silence to address."""
        rule = {"name": "r", "condition": {"type": "run_failed"}}
        self.ids["rule_id"] = self._post(http, "/alert-rules", 201, json=rule)
        ends = datetime.now(UTC) + timedelta(days=30)
        silence = {"model": "m", "ends_at": ends.isoformat()}
        self.ids["silence_id"] = self._post(http, "/silences", 201, json=silence)

    def build(self) -> None:
        """A fresh experiment with a baseline, a Running drift run and a finished check."""
        with self._http() as http:
            name = f"schemathesis-{uuid.uuid4().hex[:8]}"
            experiment = http.post(f"{API}/experiment", json={"name": name})
            assert experiment.status_code == 201, experiment.text
            self.ids = {"experiment_id": experiment.json()["id"]}
            self._baseline(http)
            self._drift(http)
            csv = {"content": REFERENCE, "headers": {"Content-Type": "text/csv"}}
            params = {"model": "m", "wait": 30}
            self.ids["checked_id"] = self._post(http, "/check", 200, params=params, **csv)
            self._alerts(http)

    def use_real_ids(self, case: schemathesis.Case[Any]) -> None:
        """Most generated ids become real ones; a stable quarter stays random (404s)."""
        report = case.operation.path.endswith("/report")
        for name, value in list(case.path_parameters.items()):
            # Only a finished check has a report.
            real = self.ids.get("checked_id" if report and name == "drift_id" else name)
            if real is not None and zlib.crc32(str(value).encode()) % 4 != 0:
                case.path_parameters[name] = real
        if case.operation.path.endswith("/events"):
            # A followed event stream never ends: ask for the kept events only.
            case.query = {**(case.query or {}), "follow": "false"}

    def after(self, case: schemathesis.Case[Any], response: Any) -> None:
        """Replace what a generated call deleted, or the experiment when it took the
        caller's Manage permission away, so later operations still reach past the 404s."""
        if not 200 <= response.status_code < 300:
            return
        if not set(case.path_parameters.values()) & set(self.ids.values()):
            return
        path, method = case.operation.path, case.method.upper()
        if method == "DELETE" and path.endswith("/drift/{drift_id}"):
            with self._http() as http:
                self._drift(http)
        elif method == "DELETE" and path.endswith("/baseline/{baseline_id}"):
            with self._http() as http:
                self._baseline(http)
        elif method == "DELETE" and path.endswith("/experiment/{experiment_id}"):
            self.build()
        elif "/alert-rules" in path or "/silences" in path:  # alerts
            if method == "DELETE" and path.endswith("/alert-rules/{rule_id}"):
                with self._http() as http:
                    self._alerts(http)
        elif method in {"PUT", "PATCH", "DELETE"} and "{drift_id}" not in path:
            body = response.json()
            entries = body if isinstance(body, list) else body.get("permissions", [])
            if {"entity": self.user_id, "level": "Manage"} not in entries:
                self.build()


@pytest.fixture(scope="module")
def world(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[World]:
    settings = make_settings(mongodb, [issuer.url, oidc_provider.url], embedded_worker=True)
    token = issuer.token("alice", expires_in=3600)
    try:
        with ThreadedServer(create_app(settings)) as server:
            world = World(server.url, {"Authorization": f"Bearer {token}"})
            with world._http() as http:
                user = http.post(f"{API}/user")
                assert user.status_code == 201, user.text
                world.user_id = user.json()["id"]
            world.build()
            with world._http() as http:
                served = http.get(f"{API}/openapi.json")
            assert served.json() == json.loads(json.dumps(DOCUMENT))
            yield world
    finally:
        mongo: MongoClient[dict[str, Any]]
        with MongoClient(settings.mongodb_url.get_secret_value()) as mongo:
            mongo.drop_database(settings.mongodb_database)


def _document() -> dict[str, Any]:
    """The OpenAPI document, built at collection time (one test per operation) by the same
    ``create_app`` the live backend runs; the ``world`` fixture checks the served one equals it."""
    unused: dict[str, Any] = {
        "mode": "development",
        "mongodb_url": "mongodb://127.0.0.1:9",
        "mongodb_database": "unused",
        "trusted_issuers": ["http://127.0.0.1:9"],
        "allow_insecure_issuers": True,
    }
    settings = Settings(**unused)
    return create_app(settings).openapi()


DOCUMENT = _document()
# The upload routes' binary media types go out as the generated bytes, as is.
schemathesis.serializer.alias(
    ["application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"],
    "application/octet-stream",
)
schemathesis.serializer.alias("text/csv", "text/plain")
schemathesis.serializer.alias("application/vnd.drift-monitor.summary+json", "application/json")
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
            },
        }
    ),
)


@schema.parametrize()
def test_every_operation_conforms_to_the_openapi_document(
    case: schemathesis.Case[Any], world: World
) -> None:
    world.use_real_ids(case)
    response = case.call_and_validate(base_url=world.url, headers=world.headers, checks=CHECKS)
    world.after(case, response)
