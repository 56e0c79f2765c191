"""``drift-monitor-server dev``: SecantusDB, the development OIDC provider and the backend,
all on loopback, with the sandbox demo data. Ctrl-C stops every process it started."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn

from drift_backend import logs
from drift_backend.devstack.sandbox import load_demo_data, load_identities, sandbox_dir
from drift_backend.devstack.services import (
    LOCALHOST,
    ManagedProcess,
    port_open,
    start_mongodb,
    start_oidc_provider,
)
from drift_backend.main import create_app
from drift_backend.settings import Settings, load_settings
from drift_backend.store.database import connect, ensure_indexes

STATE_FILE = "stack.json"


@dataclass
class StackState:
    mode: str
    api: str
    issuer: str
    mongodb: str
    pid: int

    @classmethod
    def read(cls, data_dir: Path) -> StackState:
        path = data_dir / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no local stack found in {data_dir}/ ; start one with 'make run' "
                "(or 'drift-monitor-server dev --data-dir ...' with the same --data-dir)"
            )
        state = cls(**json.loads(path.read_text()))
        return state


def _stop_all(processes: list[ManagedProcess]) -> None:
    for proc in reversed(processes):
        proc.stop()


def _check_free(port: int, what: str) -> None:
    if port_open(port):
        raise SystemExit(
            f"port {port} ({what}) is already in use; choose another with --{what}-port"
        )


async def _prepare_database(settings: Settings, issuer: str, sandbox: Path) -> bool:
    mongo = connect(settings.mongodb_url.get_secret_value(), timeout_seconds=20)
    try:
        db = mongo[settings.mongodb_database]
        await ensure_indexes(db)
        return await load_demo_data(db, sandbox, issuer)
    finally:
        await mongo.close()


def _same_origin_app(
    backend: Any, identities: dict[str, Any], url: str, issuer: str, mongodb_url: str
) -> Any:
    """The backend and the dashboard on one origin: /api and /health to the backend,
    the rest to the dashboard, which calls the API at that same origin."""
    # Imported here: the dashboard is a workspace package of its own, only the local stack
    # composes the two (an import-linter contract keeps the rest of the backend out of it).
    from drift_dashboard.app import create_app as create_dashboard
    from drift_dashboard.dispatch import SameOriginDispatcher
    from drift_dashboard.settings import load_settings as load_dashboard_settings

    client = identities["client"]
    dashboard = create_dashboard(
        load_dashboard_settings(
            mode="development",
            public_url=url,
            api_url=url,
            issuer=issuer,
            client_id=client["id"],
            client_secret=client["secret"],
            mongodb_url=mongodb_url,
        )
    )
    return SameOriginDispatcher(backend, dashboard)


def run_dev_stack(port: int, data_dir: Path, mongo_port: int, oidc_port: int) -> None:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = sandbox_dir()
    identities = load_identities(sandbox)
    external_mongo = os.environ.get("DRIFT_MONGODB_URL")
    _check_free(port, "api")
    _check_free(oidc_port, "oidc")
    with ExitStack() as stack:
        processes: list[ManagedProcess] = []
        stack.callback(_stop_all, processes)
        if external_mongo:
            mongodb_url = external_mongo
        else:
            _check_free(mongo_port, "mongo")
            print(f"starting SecantusDB on {LOCALHOST}:{mongo_port} (data in {data_dir}/mongodb)")
            mongo = start_mongodb(mongo_port, data_dir / "mongodb", data_dir / "mongodb.log")
            processes.append(mongo)
            mongodb_url = mongo.url
        print(f"starting the development OIDC provider on {LOCALHOST}:{oidc_port}")
        oidc = start_oidc_provider(oidc_port, identities["users"], data_dir / "oidc.log")
        processes.append(oidc)

        settings = load_settings(
            mode="development",
            mongodb_url=mongodb_url,
            trusted_issuers=[oidc.url],
            allow_insecure_issuers=True,
            admin_entitlements=identities["admin_entitlements"],
            embedded_worker=True,
            # notify: alert targets may be local receivers (loopback), nothing else private.
            outbound_allow=["127.0.0.0/8", "::1/128"],
        )
        if asyncio.run(_prepare_database(settings, oidc.url, sandbox)):
            print("loaded the sandbox demo data (users alice, bob, admin; 4 experiments)")

        api = f"http://{LOCALHOST}:{port}"
        app = _same_origin_app(create_app(settings), identities, api, oidc.url, mongodb_url)
        state = StackState("development", api, oidc.url, mongodb_url, os.getpid())
        state_path = data_dir / STATE_FILE
        state_path.write_text(json.dumps(asdict(state), indent=2))
        stack.callback(state_path.unlink, missing_ok=True)

        token_command = "uv run drift-monitor-server dev-token alice"  # noqa: S105
        if data_dir != (Path.cwd() / ".data").resolve():
            token_command += f" --data-dir {data_dir}"
        print(
            "\n".join(
                [
                    "",
                    "Drift Monitor local stack (development mode, loopback only)",
                    f"  dashboard      {api}/  (log in as alice, bob or admin)",
                    f"  API            {api}/api/v1",
                    f"  API docs       {api}/api/v1/docs",
                    f"  health         {api}/health/ready",
                    f"  OIDC provider  {oidc.url}",
                    f"  MongoDB        {mongodb_url}",
                    "  worker         embedded (drift checks run in this process's pool)",
                    "  sandbox users  alice, bob (ordinary users), admin",
                    "",
                    "Get an access token (prints it as its last line):",
                    f"  {token_command}",
                    "Ctrl-C stops everything.",
                    "",
                ]
            ),
            flush=True,
        )
        config = uvicorn.Config(
            app,
            host=LOCALHOST,
            port=port,
            log_config=logs.config("warning"),
            timeout_graceful_shutdown=5,  # open event streams must not hold Ctrl-C
        )
        uvicorn.Server(config).run()
    print("stopped", file=sys.stderr)
