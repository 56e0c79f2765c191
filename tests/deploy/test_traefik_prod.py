"""compose.prod.yml's Traefik flags, run by the real binary: every router ends up with the
Let's Encrypt resolver (read back from Traefik's own API), and HTTP redirects to HTTPS. The
ACME CA is pointed at a closed loopback port, so nothing leaves the machine."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import yaml
from drift_backend.devstack.services import free_port

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK = Path(sys.executable).parent / "traefik"


def _interpolate(flag: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}, from ``values``."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        assert op == ":-", f"{name} is required and has no test value"
        return rest

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", one, flag)


def test_production_flags_put_lets_encrypt_on_every_router(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "compose.prod.yml").read_text())
    ports = {name: free_port() for name in ("web", "websecure", "ping", "api", "ca")}
    values = {
        "DRIFT_DOMAIN": "drift.example.org",
        "ACME_EMAIL": "ops@example.org",
        "ACME_CA_SERVER": f"https://127.0.0.1:{ports['ca']}/directory",  # nothing listens
    }
    flags = dict(
        _interpolate(flag, values).removeprefix("--").split("=", 1)
        for flag in compose["services"]["traefik"]["command"]
    )
    for entry in ("web", "websecure", "ping"):
        flags[f"entryPoints.{entry}.address"] = f"127.0.0.1:{ports[entry]}"
    flags["certificatesResolvers.letsencrypt.acme.storage"] = str(tmp_path / "acme.json")
    flags["providers.file.directory"] = str(tmp_path / "dynamic")
    flags["providers.file.watch"] = "false"
    # Traefik's API, on loopback, to read back what it made of the configuration.
    flags["api.insecure"] = "true"
    flags["entryPoints.traefik.address"] = f"127.0.0.1:{ports['api']}"

    routes = yaml.safe_load((ROOT / "reverse-proxy" / "dynamic" / "routes.yml").read_text())
    (tmp_path / "dynamic" / "common").mkdir(parents=True)
    (tmp_path / "dynamic" / "common" / "routes.yml").write_text(yaml.safe_dump(routes))

    log = (tmp_path / "traefik.log").open("wb")
    process = subprocess.Popen(
        [str(TRAEFIK), *(f"--{key}={value}" for key, value in flags.items())],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        routers: list[dict[str, object]] = []
        while len(routers) < len(routes["http"]["routers"]):
            assert process.poll() is None, (tmp_path / "traefik.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "traefik.log").read_text()
            try:
                answer = httpx2.get(f"http://127.0.0.1:{ports['api']}/api/http/routers")
                routers = [r for r in answer.json() if str(r["name"]).endswith("@file")]
            except (httpx2.HTTPError, ValueError):  # not up yet (404 page, refused)
                pass
            time.sleep(0.2)
        for router in routers:
            assert router["entryPoints"] == ["websecure"], router
            tls = router.get("tls")
            assert isinstance(tls, dict), router
            assert tls["certResolver"] == "letsencrypt", router
            assert tls["domains"] == [{"main": "drift.example.org"}], router
        redirect = httpx2.get(
            f"http://127.0.0.1:{ports['web']}/experiments",
            headers={"Host": "drift.example.org"},
            follow_redirects=False,
        )
        assert redirect.status_code in (301, 302, 307, 308)
        assert redirect.headers["location"].startswith("https://drift.example.org")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # still retrying the (unreachable) ACME CA
            process.kill()
            process.wait(10)
        log.close()
