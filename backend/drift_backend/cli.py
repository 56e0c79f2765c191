"""``drift-monitor-server``: serve the API, run the local stack, mint development tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drift_backend.settings import ConfigurationError, load_settings


@click.group()
def main() -> None:
    """Drift Monitor server."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API with settings from DRIFT_* variables and secret files."""
    import uvicorn

    try:
        load_settings().check()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    uvicorn.run(
        "drift_backend.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
        # Event streams stay open until their client leaves: shutdown stops waiting for them.
        timeout_graceful_shutdown=5,
    )


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="API port.")
@click.option(
    "--data-dir",
    default=".data",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where the local database, logs and stack state live.",
)
@click.option("--mongo-port", default=27117, show_default=True, type=int)
@click.option("--oidc-port", default=9400, show_default=True, type=int)
def dev(port: int, data_dir: Path, mongo_port: int, oidc_port: int) -> None:
    """The whole stack on embedded defaults: SecantusDB, the OIDC provider, the API."""
    from drift_backend.devstack.stack import run_dev_stack

    run_dev_stack(port, data_dir, mongo_port, oidc_port)


@main.command()
@click.option(
    "--processes",
    default=None,
    type=click.IntRange(1, 64),
    help="Statistics processes (default: DRIFT_WORKER_PROCESSES, else 1).",
)
def worker(processes: int | None) -> None:
    """Run drift-check jobs from the shared queue until SIGTERM or Ctrl-C."""
    import asyncio

    from drift_backend.main import job_kinds
    from drift_backend.worker.service import serve_worker

    settings = load_settings()
    problems = [p for p in settings.production_problems() if "ISSUER" not in p.upper()]
    if settings.mode == "production" and problems:
        raise click.ClickException("refusing to start in production mode: " + "; ".join(problems))
    asyncio.run(serve_worker(settings, processes or settings.worker_processes, job_kinds()))


@main.command("rebuild-run-counts")
@click.option("--experiment", default=None, help="Only this experiment's runs (default: all).")
def rebuild_run_counts(experiment: str | None) -> None:
    """Recount the run timeline's hourly counts from the runs (a repair; run it while the
    experiment's runs do not change)."""
    import asyncio

    from drift_backend.charts.run_counts import rebuild
    from drift_backend.store.database import connect

    settings = load_settings()

    async def run() -> int:
        client = connect(settings.mongodb_url.get_secret_value())
        try:
            return await rebuild(client[settings.mongodb_database], experiment)
        finally:
            await client.close()

    click.echo(f"rebuilt {asyncio.run(run())} hourly run-count documents")


@main.command("dev-token")
@click.argument("user")
@click.option("--data-dir", default=".data", show_default=True, type=click.Path(path_type=Path))
def dev_token(user: str, data_dir: Path) -> None:
    """Print an access token for a sandbox USER of the running local stack (last line)."""
    from drift_backend.devstack.sandbox import load_identities, sandbox_dir
    from drift_backend.devstack.services import fetch_token
    from drift_backend.devstack.stack import StackState

    try:
        state = StackState.read(data_dir.resolve())
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    if state.mode != "development":
        raise click.ClickException("dev-token works only with a development-mode stack")
    identities = load_identities(sandbox_dir())
    known = [entry["sub"] for entry in identities["users"]]
    if user not in known:
        raise click.ClickException(f"unknown sandbox user {user!r}; one of {', '.join(known)}")
    try:
        token = fetch_token(state.issuer, user, client_secret=identities["client"]["secret"])
    except Exception as error:  # the stack may have been stopped uncleanly
        raise click.ClickException(
            f"could not reach the local stack's OIDC provider at {state.issuer}: {error}"
        ) from None
    click.echo(f"# access token for {user} (expires in {token.get('expires_in')} s)", err=True)
    click.echo(token["access_token"])


if __name__ == "__main__":
    sys.exit(main())
