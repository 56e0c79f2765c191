"""``drift-monitor-server``: serve the API, run the local stack, mint development tokens."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from drift_backend.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

    from drift_backend.store.database import Database


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

    from drift_backend import logs

    try:
        settings = load_settings()
        settings.check()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    uvicorn.run(
        "drift_backend.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_config=logs.config(settings.log_level),
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


def worker_production_problems(settings: Settings) -> list[str]:
    """What stops a worker in production: the API's problems but those of what a worker
    does not do (verify tokens, serve /metrics)."""
    return [
        problem
        for problem in settings.production_problems()
        if "ISSUER" not in problem.upper() and "METRICS_TOKEN" not in problem.upper()
    ]


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

    from drift_backend.main import job_kinds, worker_periodic
    from drift_backend.worker.service import serve_worker

    settings = load_settings()
    problems = worker_production_problems(settings)
    if settings.mode == "production" and problems:
        raise click.ClickException("refusing to start in production mode: " + "; ".join(problems))
    asyncio.run(
        serve_worker(
            settings,
            processes or settings.worker_processes,
            job_kinds(),
            worker_periodic(settings),
        )
    )


@main.command("rebuild-run-counts")
@click.option("--experiment", default=None, help="Only this experiment's runs (default: all).")
def rebuild_run_counts(experiment: str | None) -> None:
    """Recount the charts' counts (the run timeline's, the per-model totals /metrics reads,
    the checks' violations and feature history) from the stored runs and checks (a repair;
    run it while the experiment's runs do not change)."""
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


@main.command("recount-performance")
@click.option("--experiment", required=True, help="The experiment's id.")
@click.option("--model", default=None, help="Only this model (default: all of its models).")
def recount_performance(experiment: str, model: str | None) -> None:
    """Recompute a model's performance windows from its stored batches (a repair: the
    windows are what the batches say unless something else changed them). Each model's
    recount waits for, then holds, its applier's lease."""
    import asyncio

    from drift_backend.performance import concept, recount, service
    from drift_backend.store.database import connect

    settings = load_settings()

    async def run() -> list[recount.Recounted]:
        client = connect(settings.mongodb_url.get_secret_value())
        try:
            db = client[settings.mongodb_database]
            models = [model] if model else await service.model_names(db, experiment)
            tracking = concept.tracking(settings)
            return [await recount.recount(db, experiment, name, tracking) for name in models]
        finally:
            await client.close()

    for done in asyncio.run(run()):
        click.echo(
            f"{done.model}: recounted: {done.predictions} predictions, {done.labelled} "
            f"labelled, {done.hours} hours"
        )


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


# Backups and moves (issue 11): the whole database as versioned JSON lines (backup/).
def _backup_database() -> tuple[AsyncMongoClient[dict[str, Any]], Database]:
    """A client without the service's per-operation bound (an export reads for as long as
    the database is large) and the configured database."""
    from pymongo import AsyncMongoClient

    settings = load_settings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True, uuidRepresentation="standard"
    )
    return client, client[settings.mongodb_database]


@main.command("export")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--gzip/--no-gzip",
    "compress",
    default=None,
    help="Compress with gzip (default: when PATH ends in .gz).",
)
def export_command(path: Path, compress: bool | None) -> None:
    """Write every collection of DRIFT_MONGODB_DATABASE to PATH (JSON lines)."""
    import asyncio

    from pymongo.errors import PyMongoError

    from drift_backend.backup import export_database
    from drift_backend.backup.fileformat import open_for_writing

    compress = path.suffix == ".gz" if compress is None else compress
    # Written beside PATH and renamed when complete: a backup directory never holds half a
    # file under a final name.
    partial = path.with_name(path.name + ".partial")

    async def run() -> None:
        client, db = _backup_database()
        try:
            with open_for_writing(partial, compress=compress) as out:
                summary = await export_database(db, out)
        finally:
            await client.close()
        partial.replace(path)
        total = sum(summary.counts.values())
        how = "one snapshot" if summary.snapshot else "no snapshot read: see docs/deploy.md"
        click.echo(
            f"exported {total} documents of {len(summary.counts)} collections ({how}) to {path}",
            err=True,
        )

    try:
        asyncio.run(run())
    except (OSError, PyMongoError) as error:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"export failed: {error}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force", is_flag=True, help="Replace the exported collections in a non-empty database."
)
def import_command(path: Path, force: bool) -> None:
    """Load an export file (plain or gzip) into DRIFT_MONGODB_DATABASE and build its indexes."""
    import asyncio

    from pymongo.errors import PyMongoError

    from drift_backend.backup import BackupError, import_database
    from drift_backend.backup.fileformat import open_for_reading

    async def run() -> None:
        client, db = _backup_database()
        try:
            with open_for_reading(path) as source:
                summary = await import_database(db, source, force=force)
        finally:
            await client.close()
        click.echo(
            f"imported {sum(summary.counts.values())} documents of {len(summary.counts)} "
            f"collections and {summary.indexes} indexes from {path}",
            err=True,
        )

    try:
        asyncio.run(run())
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    except (OSError, PyMongoError) as error:
        raise click.ClickException(f"import failed: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
