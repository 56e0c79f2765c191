"""Authorization matrix over every v1 route.

Callers: anonymous, unregistered (valid token, never registered), another registered user with
no entry, a reader/editor/manager by user-id entry, the same three by entitlement entry, and an
administrator. Experiment-scoped routes need a level (Read < Edit < Manage); private
experiments are invisible (404) to whoever cannot read them, public ones readable by anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from drift_backend.auth.permissions import Level
from drift_backend.checks.engine import Report
from drift_backend.idempotency.keys import applies_to
from drift_backend.main import create_app
from drift_backend.notify import service as notify
from drift_backend.notify.message import AlertMessage
from drift_backend.store.database import connect

from tests.conftest import Api, make_settings

PREFIX = "/api/v1"
#: A finished check's report with nothing tested (what the report route must serve whole).
EMPTY_REPORT = Report(
    mode="raw",
    dataset_drift=False,
    drift_share=0.0,
    drifted_features=[],
    n_tested=0,
    correction="benjamini_hochberg",
    alpha=0.05,
    features=[],
)
EXP = PREFIX + "/experiment/{experiment_id}"
DRIFT = EXP + "/drift/{drift_id}"
BASELINE = EXP + "/baseline/{baseline_id}"
CHARTS = EXP + "/charts"
TARGET = EXP + "/alert-targets/{target_id}"  # notify

# Alerts.
ALERT_RULES = EXP + "/alert-rules"
ALERT_RULE = ALERT_RULES + "/{rule_id}"
ALERT_RULE_BODY = {"name": "az-rule", "condition": {"type": "run_failed"}}


def _silence() -> dict[str, Any]:
    ends = datetime.now(UTC) + timedelta(hours=1)
    return {"model": "az-model", "ends_at": ends.isoformat()}


async def _alert_ids(case: Case) -> dict[str, str]:
    """A rule and a silence of the case's experiment, for the routes that address one."""
    base = f"{PREFIX}/experiment/{case.experiment['id']}"
    rule = await case.api.request("POST", f"{base}/alert-rules", "admin", json=ALERT_RULE_BODY)
    silence = await case.api.request("POST", f"{base}/silences", "admin", json=_silence())
    assert rule.status_code == silence.status_code == 201, (rule.text, silence.text)
    return {"rule_id": rule.json()["id"], "silence_id": silence.json()["id"]}


READ_GROUP = "urn:az:group:readers"
EDIT_GROUP = "urn:az:group:editors"
MANAGE_GROUP = "urn:az:group:managers"

#: caller -> (subject or None for anonymous / a fresh unregistered subject, registered?)
CALLER_SUBJECTS: dict[str, str | None] = {
    "anonymous": None,
    "unregistered": "az-unregistered",  # made unique per case
    "other": "az-other",
    "reader": "az-reader",
    "editor": "az-editor",
    "manager": "az-manager",
    "group-reader": "az-group-reader",
    "group-editor": "az-group-editor",
    "group-manager": "az-group-manager",
    "admin": "admin",
}
CALLERS = list(CALLER_SUBJECTS)
GRANTED: dict[str, Level | None] = {
    "anonymous": None,
    "unregistered": None,
    "other": None,
    "reader": Level.Read,
    "editor": Level.Edit,
    "manager": Level.Manage,
    "group-reader": Level.Read,
    "group-editor": Level.Edit,
    "group-manager": Level.Manage,
    "admin": Level.Manage,
}


@dataclass
class Case:
    """One experiment (with one drift run) made for a single matrix case."""

    api: Api
    users: dict[str, str]
    experiment: dict[str, Any]
    drift: dict[str, Any]
    public: bool
    baseline: dict[str, Any]
    #: notify: an alert target of the experiment (its URL refused at delivery: never sent).
    target_id: str = ""
    notification_id: str = ""


Body = Callable[[Case], Any]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    ok: int
    #: level needed on the experiment (experiment-scoped routes)
    need: Level | None = None
    #: caller -> status (routes not scoped to one experiment)
    fixed: dict[str, int] = field(default_factory=dict)
    body: Body | None = None
    params: Callable[[Case], dict[str, str]] | None = None


def _everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


def _authenticated(status: int, *, unregistered: int | None = None) -> dict[str, int]:
    out = _everyone(status)
    out["anonymous"] = 401
    if unregistered is not None:
        out["unregistered"] = unregistered
    return out


def _put_experiment(case: Case) -> dict[str, Any]:
    return {
        "name": case.experiment["name"],
        "description": "replaced",
        "public": case.public,
        "permissions": case.experiment["permissions"],
    }


ROUTES: list[RouteSpec] = [
    # Documentation is public.
    RouteSpec("GET", PREFIX + "/openapi.json", 200, fixed=_everyone(200)),
    RouteSpec("GET", PREFIX + "/docs", 200, fixed=_everyone(200)),
    # Users and entitlements.
    RouteSpec("GET", PREFIX + "/entitlement", 200, fixed=_authenticated(200)),
    RouteSpec("GET", PREFIX + "/entitlements", 200, fixed=_authenticated(200)),
    RouteSpec("POST", PREFIX + "/user", 201, fixed=_authenticated(409, unregistered=201)),
    RouteSpec("GET", PREFIX + "/user/self", 200, fixed=_authenticated(200, unregistered=404)),
    RouteSpec("PUT", PREFIX + "/user/self", 200, fixed=_authenticated(200, unregistered=404)),
    RouteSpec(
        "POST",
        PREFIX + "/user/search",
        200,
        fixed={**_authenticated(403), "admin": 200},
        body=lambda case: {},
    ),
    # Experiments.
    RouteSpec(
        "POST", PREFIX + "/experiment/search", 200, fixed=_everyone(200), body=lambda case: {}
    ),
    RouteSpec(
        "POST",
        PREFIX + "/experiment",
        201,
        fixed=_authenticated(201, unregistered=403),
        body=lambda case: {"name": f"az-new-{uuid.uuid4().hex[:10]}"},
    ),
    RouteSpec("GET", EXP, 200, need=Level.Read),
    RouteSpec("PUT", EXP, 200, need=Level.Manage, body=_put_experiment),
    RouteSpec("PATCH", EXP, 200, need=Level.Manage, body=lambda case: {"description": "patched"}),
    RouteSpec("DELETE", EXP, 204, need=Level.Manage),
    RouteSpec("GET", EXP + "/permissions", 200, need=Level.Read),
    RouteSpec(
        "PUT",
        EXP + "/permissions",
        200,
        need=Level.Manage,
        body=lambda case: {"entity": "urn:az:group:newcomers", "level": "Read"},
    ),
    RouteSpec(
        "DELETE",
        EXP + "/permissions",
        200,
        need=Level.Manage,
        params=lambda case: {"entity": case.users["reader"]},
    ),
    # Drift runs.
    RouteSpec("POST", EXP + "/drift/search", 200, need=Level.Read, body=lambda case: {}),
    # perf: keyset pages of runs (the dashboard's runs table).
    RouteSpec("POST", EXP + "/drift/page", 200, need=Level.Read, body=lambda case: {}),
    RouteSpec(
        "POST",
        EXP + "/drift",
        201,
        need=Level.Edit,
        body=lambda case: {"model": "az-model", "job_status": "Running"},
    ),
    RouteSpec("GET", DRIFT, 200, need=Level.Read),
    RouteSpec(
        "PUT",
        DRIFT,
        200,
        need=Level.Edit,
        body=lambda case: {"model": "az-model", "job_status": "Completed"},
    ),
    RouteSpec("POST", DRIFT + "/heartbeat", 200, need=Level.Edit),
    RouteSpec("DELETE", DRIFT, 204, need=Level.Edit),
    # The last run per experiment: everyone gets 200, unreadable ones are
    # left out of the answer (tests/api/test_latest_runs.py checks which).
    RouteSpec(
        "GET",
        PREFIX + "/drift/latest",
        200,
        fixed=_everyone(200),
        params=lambda case: {"experiment": case.experiment["id"]},
    ),
    # Baselines and server-side checks.
    RouteSpec(
        "POST",
        EXP + "/baseline",
        201,
        need=Level.Edit,
        body=lambda case: {"columns": {"x": [1.0, 2.0, 3.0, 4.0]}},
    ),
    RouteSpec("GET", EXP + "/baseline", 200, need=Level.Read),
    RouteSpec("GET", BASELINE, 200, need=Level.Read),
    RouteSpec("GET", BASELINE + "/bins", 200, need=Level.Read),
    RouteSpec("GET", BASELINE + "/statistics.json", 200, need=Level.Read),
    RouteSpec("GET", BASELINE + "/constraints.json", 200, need=Level.Read),
    RouteSpec("DELETE", BASELINE, 204, need=Level.Edit),
    RouteSpec(
        "POST",
        EXP + "/check",
        202,
        need=Level.Edit,
        body=lambda case: {"columns": {"x": [1.5, 2.5]}},
        params=lambda case: {"model": "az-model"},
    ),
    RouteSpec("GET", DRIFT + "/report", 200, need=Level.Read),
    # Chart data (and its CSV, the same route with ?format=csv).
    RouteSpec("GET", CHARTS + "/timeline", 200, need=Level.Read),
    RouteSpec("GET", CHARTS + "/features/{feature:path}", 200, need=Level.Read),
    RouteSpec("GET", CHARTS + "/heatmap", 200, need=Level.Read),
    RouteSpec(
        "GET",
        CHARTS + "/violations",
        200,
        need=Level.Read,
        params=lambda case: {"format": "csv"},
    ),
    # Model performance: the case's model has two predictions.
    RouteSpec(
        "POST",
        EXP + "/predictions",
        200,
        need=Level.Edit,
        body=lambda case: {"columns": {"id": ["c", "d"], "y_pred": [0, 1]}},
        params=lambda case: {"model": "az-model"},
    ),
    RouteSpec(
        "POST",
        EXP + "/ground-truth",
        200,
        need=Level.Edit,
        body=lambda case: {"columns": {"id": ["a", "b"], "y_true": [0, 0]}},
        params=lambda case: {"model": "az-model"},
    ),
    RouteSpec(
        "POST",
        EXP + "/performance-reference",
        200,
        need=Level.Edit,
        body=lambda case: {"columns": {"y_true": [0, 1], "y_pred": [0, 0]}},
        params=lambda case: {"model": "az-model"},
    ),
    RouteSpec(
        "GET",
        EXP + "/performance",
        200,
        need=Level.Read,
        params=lambda case: {"model": "az-model"},
    ),
    # The models a dashboard can pick.
    RouteSpec("GET", EXP + "/performance/models", 200, need=Level.Read),
    # Metrics per drift run (the case's predictions belong to its run).
    RouteSpec(
        "GET",
        EXP + "/performance/runs",
        200,
        need=Level.Read,
        params=lambda case: {"model": "az-model"},
    ),
    RouteSpec("GET", DRIFT + "/performance", 200, need=Level.Read),
    # Event streams, filtered to the case's experiment (not followed, so the answer ends).
    RouteSpec(
        "GET",
        PREFIX + "/events",
        200,
        need=Level.Read,
        params=lambda case: {"experiment": case.experiment["id"], "follow": "false"},
    ),
    # notify: alert targets (Manage to change, Read to see) and the delivery log.
    RouteSpec("GET", EXP + "/alert-targets", 200, need=Level.Read),
    RouteSpec(
        "POST",
        EXP + "/alert-targets",
        201,
        need=Level.Manage,
        # A global address literal: nothing to resolve, nothing sent.
        body=lambda case: {"name": "az", "kind": "zapier", "url": "https://93.184.215.14/x"},
    ),
    RouteSpec("GET", TARGET, 200, need=Level.Read),
    RouteSpec("PATCH", TARGET, 200, need=Level.Manage, body=lambda case: {"name": "renamed"}),
    RouteSpec("DELETE", TARGET, 204, need=Level.Manage),
    RouteSpec("POST", TARGET + "/test", 200, need=Level.Manage),
    RouteSpec("GET", EXP + "/notifications", 200, need=Level.Read),
    RouteSpec("POST", EXP + "/notifications/{notification_id}/redeliver", 202, need=Level.Manage),
    # Alerts: rules (Manage to change), silences (Edit), alerts now.
    RouteSpec("GET", ALERT_RULES, 200, need=Level.Read),
    RouteSpec("POST", ALERT_RULES, 201, need=Level.Manage, body=lambda case: ALERT_RULE_BODY),
    RouteSpec("GET", ALERT_RULE, 200, need=Level.Read),
    RouteSpec("PUT", ALERT_RULE, 200, need=Level.Manage, body=lambda case: ALERT_RULE_BODY),
    RouteSpec("PATCH", ALERT_RULE, 200, need=Level.Manage, body=lambda case: {"for_runs": 2}),
    RouteSpec("DELETE", ALERT_RULE, 204, need=Level.Manage),
    RouteSpec("GET", EXP + "/silences", 200, need=Level.Read),
    RouteSpec("POST", EXP + "/silences", 201, need=Level.Edit, body=lambda case: _silence()),
    RouteSpec("DELETE", EXP + "/silences/{silence_id}", 204, need=Level.Edit),
    RouteSpec("GET", EXP + "/alerts", 200, need=Level.Read),
]


def expected_status(route: RouteSpec, caller: str, public: bool) -> int:
    if route.need is None:
        return route.fixed[caller]
    level = GRANTED[caller]
    if level is None and public:
        level = Level.Read
    if level is None:
        return 404  # invisible: not even its existence is revealed
    if level.rank >= route.need.rank:
        return route.ok
    return 401 if caller == "anonymous" else 403


# --- the route list is complete ---------------------------------------------------------------


def _walk(routes: Any) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every endpoint, through included routers (FastAPI >= 0.16x keeps
    them nested; older versions flatten them into plain routes)."""
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if isinstance(path, str) and methods:
            yield path, set(methods)
        elif hasattr(route, "effective_route_contexts"):
            yield from _walk(route.effective_route_contexts())


def _app_routes() -> set[tuple[str, str]]:
    settings = make_settings(
        type("P", (), {"url": "mongodb://127.0.0.1:9"})(),
        ["http://127.0.0.1:9"],
    )
    app = create_app(settings)
    return {
        (method, path)
        for path, methods in _walk(app.routes)
        if path.startswith(PREFIX)
        for method in methods
        if method != "HEAD"
    }


def test_every_v1_route_is_in_the_matrix() -> None:
    in_matrix = {(route.method, route.path) for route in ROUTES}
    in_app = _app_routes()
    assert in_app - in_matrix == set(), "routes missing from the authorization matrix"
    assert in_matrix - in_app == set(), "matrix names routes the app does not have"


#: Routes outside /api/v1, each with why the matrix above (OIDC callers, experiment levels)
#: does not apply to it.
OUTSIDE_V1: dict[tuple[str, str], str] = {
    ("GET", "/health/live"): "liveness for orchestrators: open, says nothing",
    ("GET", "/health/ready"): "readiness for load balancers: open, says nothing",
    ("GET", "/docs/oauth2-redirect"): "FastAPI's static page for the docs' OAuth2 login",
    # Its own bearer token (DRIFT_METRICS_TOKEN), not an OIDC one: tests/metrics/
    # test_http_and_token.py covers 401 without it and 200 with it outside development.
    ("GET", "/metrics"): "Prometheus scrapes, with the metrics token",
}


def test_routes_outside_v1_are_the_listed_ones() -> None:
    settings = make_settings(
        type("P", (), {"url": "mongodb://127.0.0.1:9"})(),
        ["http://127.0.0.1:9"],
    )
    outside = {
        (method, path)
        for path, methods in _walk(create_app(settings).routes)
        if not path.startswith(PREFIX)
        for method in methods
        if method != "HEAD"
    }
    assert outside == set(OUTSIDE_V1)


def test_matrix_covers_every_caller() -> None:
    for route in ROUTES:
        if route.need is None:
            assert set(route.fixed) == set(CALLERS), route


# --- the matrix ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def users(shared_api: Api) -> dict[str, str]:
    """Registered callers of the shared backend: caller name -> user id."""
    issuer = shared_api.issuer
    issuer.profile("az-group-reader", eduperson_entitlement=[READ_GROUP])
    issuer.profile("az-group-editor", eduperson_entitlement=[EDIT_GROUP])
    issuer.profile("az-group-manager", eduperson_entitlement=[MANAGE_GROUP])
    ids: dict[str, str] = {}
    for caller, subject in CALLER_SUBJECTS.items():
        if subject is None or caller == "unregistered":
            continue
        ids[caller] = (await shared_api.register(subject))["id"]
    return ids


async def _make_case(api: Api, users: dict[str, str], public: bool) -> Case:
    permissions = [
        {"entity": users["reader"], "level": "Read"},
        {"entity": users["editor"], "level": "Edit"},
        {"entity": READ_GROUP, "level": "Read"},
        {"entity": EDIT_GROUP, "level": "Edit"},
        {"entity": MANAGE_GROUP, "level": "Manage"},
    ]
    experiment = await api.experiment("az-manager", public=public, permissions=permissions)
    response = await api.request(
        "POST",
        f"{PREFIX}/experiment/{experiment['id']}/drift",
        "az-manager",
        json={"model": "az-model", "job_status": "Running"},
    )
    assert response.status_code == 201, response.text
    drift = response.json()
    baseline = await api.request(
        "POST",
        f"{PREFIX}/experiment/{experiment['id']}/baseline",
        "az-manager",
        json={"columns": {"x": [0.0, 1.0, 2.0]}},
    )
    assert baseline.status_code == 201, baseline.text
    # Predictions of the case's model, for the performance routes.
    predictions = await api.request(
        "POST",
        f"{PREFIX}/experiment/{experiment['id']}/predictions",
        "az-manager",
        params={"model": "az-model", "run": drift["id"]},  # of the case's run
        json={"columns": {"id": ["a", "b"], "y_pred": [0, 1]}},
    )
    assert predictions.status_code == 200, predictions.text
    # A finished check's report, as a worker would have stored it.
    client = connect(api.settings.mongodb_url.get_secret_value())
    target_id = uuid.uuid4().hex
    try:
        await client[api.settings.mongodb_database].reports.insert_one(
            {"_id": drift["id"], **EMPTY_REPORT.model_dump(mode="json")}
        )
        # notify: a target as stored; its loopback URL is refused by the test route at once.
        now = datetime.now(UTC)
        await client[api.settings.mongodb_database].alert_targets.insert_one(
            {
                "_id": target_id,
                "experiment_id": experiment["id"],
                "name": "az-target",
                "kind": "zapier",
                "url": "http://127.0.0.1:9/hook",
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        # notify: a queued notification (for the delivery log and its redeliver).
        notification_id = uuid.uuid4().hex
        await notify.enqueue(
            client[api.settings.mongodb_database],
            AlertMessage(
                dedup_key=notification_id,
                experiment_id=experiment["id"],
                experiment_name=experiment["name"],
                rule_id="az-rule",
                rule_name="az rule",
                model="az-model",
                status="firing",
                starts_at=now,
                summary="az",
            ),
        )
    finally:
        await client.close()
    return Case(api, users, experiment, drift, public, baseline.json(), target_id, notification_id)


async def _state(case: Case) -> tuple[Any, Any]:
    """What an administrator sees of the case's experiment and its runs."""
    exp_id = case.experiment["id"]
    experiment = await case.api.request("GET", f"{PREFIX}/experiment/{exp_id}", "admin")
    runs = await case.api.request(
        "POST", f"{PREFIX}/experiment/{exp_id}/drift/search", "admin", json={}
    )
    return experiment.json(), runs.json()


def _case_id(route: RouteSpec) -> str:
    return f"{route.method} {route.path.removeprefix(PREFIX)}"


def _matrix() -> Iterator[Any]:
    for route in ROUTES:
        # Creating routes also run with an Idempotency-Key: it changes no answer.
        keyed_variants = [False, True] if applies_to(route.method, route.path) else [False]
        for caller in CALLERS:
            # "public" only matters for experiment routes and callers with no entry.
            variants = [False, True] if route.need and GRANTED[caller] is None else [False]
            for public in variants:
                for keyed in keyed_variants:
                    name = (
                        f"{_case_id(route)}-{caller}"
                        + ("-public" if public else "")
                        + ("-keyed" if keyed else "")
                    )
                    yield pytest.param(route, caller, public, keyed, id=name)


@pytest.mark.parametrize(("route", "caller", "public", "keyed"), list(_matrix()))
async def test_authorization_matrix(
    shared_api: Api,
    users: dict[str, str],
    route: RouteSpec,
    caller: str,
    public: bool,
    keyed: bool,
) -> None:
    case = await _make_case(shared_api, users, public)
    subject = CALLER_SUBJECTS[caller]
    if caller == "unregistered":
        subject = f"az-unregistered-{uuid.uuid4().hex[:8]}"
    wants_ids = "{rule_id}" in route.path or "{silence_id}" in route.path
    alert_ids = await _alert_ids(case) if wants_ids else {}
    url = route.path.replace("{feature:path}", "x/y").format(
        experiment_id=case.experiment["id"],
        drift_id=case.drift["id"],
        baseline_id=case.baseline["id"],
        target_id=case.target_id,
        notification_id=case.notification_id,
        **alert_ids,
    )
    kwargs: dict[str, Any] = {}
    if route.body is not None:
        kwargs["json"] = route.body(case)
    if route.params is not None:
        kwargs["params"] = route.params(case)
    key = uuid.uuid4().hex
    if keyed:
        kwargs["headers"] = {"Idempotency-Key": key}
    before = await _state(case) if route.need is not None else None

    response = await shared_api.request(route.method, url, subject, **kwargs)

    want = expected_status(route, caller, public)
    assert response.status_code == want, (caller, response.text)
    if want >= 400:
        body = response.json()
        assert body["status"] == want
        assert body["code"] in {"unauthorized", "forbidden", "not_found", "conflict"}
        assert isinstance(body["message"], str)
    if want == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if want in (403, 404) and before is not None:
        # A refused request leaves the experiment and its runs as they were.
        assert await _state(case) == before
    if want == 404:
        # Nothing of the experiment leaks into the error.
        assert case.experiment["name"] not in response.text
    if keyed:
        # Only successes are kept; a refusal leaves the key free for a retry once allowed.
        kept = await _idempotency_records(case, key)
        assert kept == (1 if want < 300 else 0)


async def _idempotency_records(case: Case, key: str) -> int:
    client = connect(case.api.settings.mongodb_url.get_secret_value())
    try:
        db = client[case.api.settings.mongodb_database]
        return int(await db.idempotency_keys.count_documents({"key": key}))
    finally:
        await client.close()


# --- visibility in search and other cross-cutting rules -------------------------------------


async def test_search_shows_only_readable_experiments(api: Api) -> None:
    alice = await api.register("alice")
    await api.register("bob")
    await api.register("admin")
    private = await api.experiment("alice")
    public = await api.experiment("alice", public=True)
    team_b = await api.experiment(
        "alice", permissions=[{"entity": "urn:test:group:team-b", "level": "Read"}]
    )
    carols = await api.experiment("admin", permissions=[{"entity": alice["id"], "level": "Read"}])
    visible = {
        None: {public["id"]},
        "carol": {public["id"]},  # valid token, not registered
        "bob": {public["id"], team_b["id"]},  # via his entitlement
        "alice": {private["id"], public["id"], team_b["id"], carols["id"]},
        "admin": {private["id"], public["id"], team_b["id"], carols["id"]},
    }
    for who, ids in visible.items():
        r = await api.request("POST", f"{PREFIX}/experiment/search", who, json={})
        assert r.status_code == 200, r.text
        assert {item["id"] for item in r.json()} == ids, who
        assert f'"total":{len(ids)}' in r.headers["x-pagination"], who

    # Searching for a private experiment by name finds nothing, and counts nothing.
    r = await api.request(
        "POST", f"{PREFIX}/experiment/search", "bob", json={"name": private["name"]}
    )
    assert r.json() == []
    assert '"total":0' in r.headers["x-pagination"]
    # Even a filter naming the id, or $or-ing in "public": false, stays inside the scope.
    r = await api.request(
        "POST",
        f"{PREFIX}/experiment/search",
        None,
        json={"$or": [{"id": private["id"]}, {"public": False}]},
    )
    assert r.json() == []


async def test_anonymous_reads_public_experiment_and_runs(api: Api) -> None:
    await api.register("alice")
    exp = await api.experiment("alice", public=True)
    r = await api.request(
        "POST", f"{PREFIX}/experiment/{exp['id']}/drift", "alice", json={"model": "m"}
    )
    drift = r.json()
    r = await api.request("GET", f"{PREFIX}/experiment/{exp['id']}")
    assert r.status_code == 200
    assert r.json()["id"] == exp["id"]
    r = await api.request("POST", f"{PREFIX}/experiment/{exp['id']}/drift/search", json={})
    assert [item["id"] for item in r.json()] == [drift["id"]]
    r = await api.request("GET", f"{PREFIX}/experiment/{exp['id']}/drift/{drift['id']}")
    assert r.status_code == 200
    # Turning it private hides it again.
    r = await api.request(
        "PATCH", f"{PREFIX}/experiment/{exp['id']}", "alice", json={"public": False}
    )
    assert r.status_code == 200
    r = await api.request("GET", f"{PREFIX}/experiment/{exp['id']}/drift/{drift['id']}")
    assert r.status_code == 404


async def test_runs_are_reached_only_through_their_own_experiment(api: Api) -> None:
    """Manage on experiment B gives nothing on A's runs addressed through B's URL."""
    await api.register("alice")
    await api.register("bob")
    a = await api.experiment("alice")
    b = await api.experiment("bob")
    r = await api.request(
        "POST", f"{PREFIX}/experiment/{a['id']}/drift", "alice", json={"model": "m"}
    )
    run = r.json()
    for method, suffix, body in [
        ("GET", "", None),
        ("PUT", "", {"model": "m", "job_status": "Completed"}),
        ("POST", "/heartbeat", None),
        ("DELETE", "", None),
    ]:
        r = await api.request(
            method, f"{PREFIX}/experiment/{b['id']}/drift/{run['id']}{suffix}", "bob", json=body
        )
        assert r.status_code == 404, (method, suffix, r.text)
    r = await api.request("GET", f"{PREFIX}/experiment/{a['id']}/drift/{run['id']}", "alice")
    assert r.json()["job_status"] == "Running"


async def test_unknown_experiment_is_404_for_everyone(api: Api) -> None:
    await api.register("alice")
    missing = str(uuid.uuid4())
    for who in (None, "alice", "admin"):
        r = await api.request("GET", f"{PREFIX}/experiment/{missing}", who)
        assert r.status_code == 404
        r = await api.request("DELETE", f"{PREFIX}/experiment/{missing}", who)
        assert r.status_code == 404


@pytest.mark.parametrize("level", ["Read", "Edit", "Manage"])
async def test_entitlement_entry_grants_its_level(api: Api, level: str) -> None:
    await api.register("alice")
    await api.register("bob")
    exp = await api.experiment(
        "alice", permissions=[{"entity": "urn:test:group:team-b", "level": level}]
    )
    base = f"{PREFIX}/experiment/{exp['id']}"
    read = await api.request("GET", base, "bob")
    write = await api.request("POST", f"{base}/drift", "bob", json={"model": "m"})
    manage = await api.request("PATCH", base, "bob", json={"description": "by bob"})
    rank = {"Read": 1, "Edit": 2, "Manage": 3}[level]
    assert read.status_code == 200
    assert write.status_code == (201 if rank >= 2 else 403)
    assert manage.status_code == (200 if rank >= 3 else 403)
    # carol's entitlement (team-c) is not in the list: she sees nothing.
    await api.register("carol")
    assert (await api.request("GET", base, "carol")).status_code == 404
