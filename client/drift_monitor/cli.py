"""``drift-monitor`` command line: whoami, experiments, drifts, baselines, checks, reports,
and the spool."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, TextIO

from drift_monitor import __version__
from drift_monitor._client import Client
from drift_monitor._exceptions import (
    APIError,
    CheckFailed,
    DriftMonitorError,
    ExperimentNotFound,
    NotFoundError,
)
from drift_monitor._models import Drift, Experiment, Report
from drift_monitor._spool import Spool, SpoolEntry

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drift-monitor",
        description="Drift Monitor command line (settings from DRIFT_MONITOR_* variables).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--url", help="server URL (default: $DRIFT_MONITOR_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("whoami", help="show the token's user and entitlements")

    experiments = commands.add_parser("experiments", help="list or create experiments")
    exp_commands = experiments.add_subparsers(dest="action", required=True)
    listing = exp_commands.add_parser("list", help="list readable experiments")
    listing.add_argument("--name", help="only the experiment with this name")
    listing.add_argument("--page-size", type=_page_size, default=20, help="at most this many")
    create = exp_commands.add_parser("create", help="create an experiment")
    create.add_argument("name")
    create.add_argument("--description", default=None)
    create.add_argument("--public", action="store_true", help="anyone may read it")

    drifts = commands.add_parser("drifts", help="list drift runs")
    drift_commands = drifts.add_subparsers(dest="action", required=True)
    drift_list = drift_commands.add_parser("list", help="list an experiment's drift runs")
    drift_list.add_argument("experiment_name")
    drift_list.add_argument("--model", help="only runs of this model")
    drift_list.add_argument("--page-size", type=_page_size, default=20, help="at most this many")

    baselines = commands.add_parser("baseline", help="upload or list baselines")
    baseline_commands = baselines.add_subparsers(dest="action", required=True)
    upload = baseline_commands.add_parser("upload", help="upload reference data (CSV/Parquet)")
    upload.add_argument("experiment", help="experiment name (or id)")
    upload.add_argument("file", help="a .csv, .parquet or .json file")
    upload.add_argument("--model", help="the model the baseline is for")
    upload.add_argument("--name", help="a name for the baseline")
    baseline_list = baseline_commands.add_parser("list", help="list an experiment's baselines")
    baseline_list.add_argument("experiment", help="experiment name (or id)")

    check = commands.add_parser("check", help="check a batch for drift on the server")
    check.add_argument("experiment", help="experiment name (or id)")
    check.add_argument("file", help="a .csv, .parquet or .json file")
    check.add_argument("--model", required=True)
    check.add_argument("--baseline", help="baseline id (default: the server's choice)")
    check.add_argument("--tag", action="append", default=[], dest="tags", help="repeatable")
    check.add_argument("--wait", type=float, default=60.0, help="seconds the server holds")
    check.add_argument("--timeout", type=float, default=600.0, help="seconds in total")
    check.add_argument(
        "--summary-only", action="store_true", help="send only counts on the baseline's bins"
    )

    report = commands.add_parser("report", help="show a finished check's report")
    report.add_argument("experiment", help="experiment name (or id)")
    report.add_argument("drift_id")

    spool = commands.add_parser("spool", help="records kept while the server was unreachable")
    spool.add_argument("--dir", help="spool directory (default: $DRIFT_MONITOR_SPOOL_DIR)")
    spool_commands = spool.add_subparsers(dest="action", required=True)
    spool_commands.add_parser("list", help="show what waits, and what the server refused")
    spool_commands.add_parser("flush", help="send what waits to the server, in order")
    return parser


def _page_size(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 API or network error, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "spool":
            return _spool(args, sys.stdout)
        with Client(args.url) as client:
            return _run(client, args, sys.stdout)
    except APIError as exc:
        print(f"drift-monitor: error: {exc}", file=sys.stderr)
        for field_error in exc.errors:
            print(f"  {field_error.field}: {field_error.reason}", file=sys.stderr)
        return 1
    except DriftMonitorError as exc:
        print(f"drift-monitor: error: {exc}", file=sys.stderr)
        return 1


def _experiment(client: Client, name_or_id: str) -> Experiment:
    try:
        return client.find_experiment(name_or_id)
    except ExperimentNotFound:
        try:
            return client.get_experiment(name_or_id)
        except NotFoundError:
            raise ExperimentNotFound(name_or_id) from None


def _check(client: Client, args: argparse.Namespace) -> tuple[Drift, Report]:
    experiment = _experiment(client, args.experiment)
    drift = client.check(
        experiment.id,
        args.file,
        model=args.model,
        baseline=args.baseline,
        tags=args.tags,
        wait=min(args.wait, args.timeout),
        summary_only=args.summary_only,
    )
    if drift.job_status == "Running":
        print(f"check {drift.id} queued; waiting for it to finish ...", file=sys.stderr)
        drift = client.wait_for_run(experiment.id, drift.id, timeout=args.timeout)
    if drift.job_status == "Failed":
        why = f"{drift.error.type}: {drift.error.message}" if drift.error else "no error recorded"
        raise CheckFailed(f"drift check {drift.id} failed on the server ({why})", drift)
    return drift, client.get_report(experiment.id, drift.id)


def _print_report(report: Report, out: TextIO) -> None:
    rows = [
        [
            f.feature,
            f.kind,
            f.test or "-",
            _number(f.statistic),
            _number(f.p_value_adjusted if f.p_value_adjusted is not None else f.p_value),
            _number(f.distance),
            "DRIFT" if f.drifted else ("untestable" if f.untestable else "ok"),
        ]
        for f in report.features
    ]
    _table(["feature", "kind", "test", "statistic", "p_value", "distance", "result"], rows, out)
    drifted = len(report.drifted_features)
    print(
        f"dataset drift: {'yes' if report.dataset_drift else 'no'} "
        f"({drifted} of {report.n_tested} tested features drifted; "
        f"correction {report.correction}, alpha {report.alpha:g})",
        file=out,
    )
    for violation in report.violations:
        print(
            f"violation: {violation.feature_name}: {violation.constraint_check_type}: "
            f"{violation.description}",
            file=out,
        )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "whoami":
        user = client.get_user()
        entitlements = client.entitlements()
        if args.json:
            _dump({**asdict(user), "entitlements": entitlements}, out)
        else:
            rows = [
                ["id", user.id],
                ["subject", user.subject],
                ["issuer", user.issuer],
                ["email", user.email or ""],
                ["entitlements", ", ".join(entitlements)],
            ]
            _table(["field", "value"], rows, out)
        return 0
    if args.command == "experiments" and args.action == "list":
        query = {"name": args.name} if args.name else {}
        page = client.search_experiments(query, page_size=args.page_size)
        if args.json:
            _dump([asdict(e) for e in page.items], out)
        else:
            rows = [
                [
                    e.name,
                    e.id,
                    "yes" if e.public else "no",
                    _when(e.created_at),
                    e.description or "",
                ]
                for e in page.items
            ]
            _table(["name", "id", "public", "created", "description"], rows, out)
            _footer(len(page.items), page.pagination.total, out)
        return 0
    if args.command == "experiments" and args.action == "create":
        experiment = client.create_experiment(args.name, args.description, public=args.public)
        if args.json:
            _dump(asdict(experiment), out)
        else:
            print(f"created experiment {experiment.name!r} ({experiment.id})", file=out)
        return 0
    if args.command == "drifts" and args.action == "list":
        experiment = client.find_experiment(args.experiment_name)
        query = {"model": args.model} if args.model else {}
        drifts = client.search_drifts(experiment.id, query, page_size=args.page_size)
        if args.json:
            _dump([asdict(d) for d in drifts.items], out)
        else:
            rows = [
                [
                    d.id,
                    d.model,
                    d.job_status,
                    "yes" if d.drift_detected else "no",
                    _when(d.created_at),
                    ",".join(d.tags),
                ]
                for d in drifts.items
            ]
            _table(["id", "model", "status", "drift", "created", "tags"], rows, out)
            _footer(len(drifts.items), drifts.pagination.total, out)
        return 0
    if args.command == "baseline" and args.action == "upload":
        experiment = _experiment(client, args.experiment)
        baseline = client.upload_baseline(
            experiment.id, args.file, name=args.name, model=args.model
        )
        if args.json:
            _dump(asdict(baseline), out)
        else:
            print(
                f"uploaded baseline {baseline.id} ({baseline.row_count} rows, "
                f"{len(baseline.features)} features)",
                file=out,
            )
        return 0
    if args.command == "baseline" and args.action == "list":
        experiment = _experiment(client, args.experiment)
        baselines = client.list_baselines(experiment.id)
        if args.json:
            _dump([asdict(b) for b in baselines], out)
        else:
            rows = [
                [b.id, b.name or "", b.model or "", str(b.row_count), _when(b.created_at)]
                for b in baselines
            ]
            _table(["id", "name", "model", "rows", "created"], rows, out)
            _footer(len(baselines), len(baselines), out)
        return 0
    if args.command == "check":
        drift, report = _check(client, args)
        if args.json:
            _dump({"drift": asdict(drift), "report": asdict(report)}, out)
        else:
            print(f"drift run {drift.id}", file=out)
            _print_report(report, out)
        return 0
    if args.command == "report":
        experiment = _experiment(client, args.experiment)
        report = client.get_report(experiment.id, args.drift_id)
        if args.json:
            _dump(asdict(report), out)
        else:
            _print_report(report, out)
        return 0
    raise AssertionError(f"unhandled command {args}")  # argparse makes this unreachable


def _spool(args: argparse.Namespace, out: TextIO) -> int:
    spool = Spool(args.dir)
    if args.action == "list":
        entries = spool.entries()
        if args.json:
            _dump([_entry_json(e) for e in entries], out)
            return 0
        rows = [
            [
                e.id,
                e.state,
                e.kind,
                e.experiment,
                e.model,
                _when(e.at),
                str(e.size) if e.size else "",
                e.server,
                e.reason or "",
            ]
            for e in entries
        ]
        header = ["entry", "state", "kind", "experiment", "model", "at", "bytes", "server"]
        _table([*header, "reason"], rows, out)
        print(f"({len(entries)} in {spool.directory})" if entries else "(none)", file=out)
        return 0
    with Client(args.url) as client:
        result = spool.flush(client)
    if args.json:
        _dump(asdict(result), out)
    else:
        print(
            f"sent {result.sent}, refused {result.dead} (see spool list), waiting {result.waiting}",
            file=out,
        )
    if result.stopped is not None:
        print(f"drift-monitor: error: flush stopped: {result.stopped}", file=sys.stderr)
        return 1
    return 0


def _entry_json(entry: SpoolEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["path"] = str(entry.path)
    return data


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _dump(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, default=_json_default)
    out.write("\n")


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _table(header: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        line = "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip(), file=out)


def _footer(shown: int, total: int, out: TextIO) -> None:
    if total > shown:
        print(f"({shown} of {total} shown; use --page-size)", file=out)
    elif total == 0:
        print("(none)", file=out)


if __name__ == "__main__":
    sys.exit(main())
