"""The layout rules a newcomer relies on:

- one collection has one owner: a MongoDB collection is read and written only by the package
  that owns it (``OWNERS``); others call that package's service. The dashboard
  (``frontend/drift_dashboard``) is scanned too: it owns its sessions and touches no backend
  collection, and the backend never touches the dashboard's;
- ``worker/`` and ``checks/`` do not import each other and no service imports the web layer
  (the import-linter contracts in ``pyproject.toml``, run here and by ``make lint``).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backend" / "drift_backend"
#: The dashboard: its files are scanned as ``drift_dashboard/...`` (an owner of that name).
DASHBOARD = ROOT / "frontend" / "drift_dashboard"
DASHBOARD_OWNER = "drift_dashboard"

#: Collection -> the package (directory under ``drift_backend/``) that owns it. A new
#: collection gets its line here.
OWNERS: dict[str, str] = {
    "users": "users",
    "experiments": "experiments",
    "drifts": "drifts",
    "baselines": "baselines",
    "baseline_profiles.files": "baselines",
    "baseline_profiles.chunks": "baselines",
    "jobs": "jobs",
    "reports": "checks",
    "batches.files": "checks",
    "batches.chunks": "checks",
    "meta": "devstack",
    "idempotency_keys": "idempotency",
    "feature_results": "charts",
    "check_runs": "charts",
    "events": "events",
    "event_counters": "events",
    "notifications": "notify",
    "alert_targets": "notify",
    "deliveries": "notify",
    # Predictions, late labels and their windows
    "predictions": "performance",  # before the batches: upgrade.py moves it into them
    "performance_batches": "performance",  # every predictions and labels batch
    "performance_windows": "performance",
    "performance_models": "performance",
    "performance_decisions": "performance",  # Decided windows
    "performance_runs": "performance",  # metrics per drift run
    # The dashboard's server-side sessions (frontend/drift_dashboard/sessions.py)
    "dashboard_sessions": DASHBOARD_OWNER,
    # Alerts.
    "alert_rules": "alerts",
    "alert_groups": "alerts",
    "silences": "alerts",
    "run_counts": "charts",  # perf: the run timeline's hourly counts
    "run_count_marks": "charts",  # perf: where each run is counted
    # Per-model totals for /metrics; checks counted for the charts
    "run_totals": "charts",
    "violation_counts": "charts",
    "check_count_marks": "charts",
    "feature_counts": "charts",
}

#: (collection, file) pairs allowed outside the owner, each for a stated reason.
EXEMPT: dict[tuple[str, str], str] = {
    # The development-only demo data: fixtures with past timestamps, written as stored.
    ("users", "devstack/sandbox.py"): "demo data",
    ("experiments", "devstack/sandbox.py"): "demo data",
    ("drifts", "devstack/sandbox.py"): "demo data",
}

#: Where a collection name computed at run time may be used (generic index creation).
DYNAMIC_ALLOWED = {
    "store/database.py",
    # deploy (issue 11): export/import copy every collection as it is, owned by whoever.
    "backup/dump.py",
    "backup/restore.py",
}

_DATABASE_ATTRIBUTES = set(dir(AsyncDatabase))
#: Names a MongoDB client goes by, as in ``mongo[database][collection]``.
_CLIENT_NAMES = {"mongo", "client", "mongo_client"}


@dataclass(frozen=True)
class Access:
    collection: str  # "?" when computed at run time
    path: str  # relative to drift_backend/
    line: int


def _is_db(node: ast.expr) -> bool:
    """``db``, ``ctx.db``, ``self.db``, ``context.db``..."""
    return (isinstance(node, ast.Name) and node.id == "db") or (
        isinstance(node, ast.Attribute) and node.attr == "db"
    )


def _is_client(node: ast.expr) -> bool:
    """``mongo``, ``context.mongo``, ``client``..."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    return name in _CLIENT_NAMES


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            found[stmt.targets[0].id] = stmt.value.value
    return found


def _string(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    """A string known without running the code: a literal, a module constant or an
    f-string of those; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            part = _string(inner, constants)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    return None


def accesses(source: str, path: str, imported: dict[str, str] | None = None) -> list[Access]:
    """Every collection ``source`` reaches: ``db.<name>``, ``db["<name>"]``,
    ``mongo[<database>]["<name>"]``, ``db.get_collection("<name>")`` and GridFS buckets
    (``<bucket>.files``/``.chunks``). ``imported``: string constants the module imports
    from its package (``from drift_dashboard.sessions import COLLECTION``)."""
    tree = ast.parse(source)
    constants = {**(imported or {}), **_constants(tree)}
    found: list[Access] = []

    def add(name: str | None, node: ast.AST) -> None:
        line = getattr(node, "lineno", 0)
        if name is None:
            found.append(Access("?", path, line))
        else:
            found.append(Access(name, path, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_db(node.value):
            if node.attr not in _DATABASE_ATTRIBUTES:
                add(node.attr, node)
        elif (isinstance(node, ast.Subscript) and _is_db(node.value)) or (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Subscript)
            and _is_client(node.value.value)
        ):
            add(_string(node.slice, constants), node)
        elif isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get_collection"
                and _is_db(func.value)
            ):
                add(_string(node.args[0] if node.args else None, constants), node)
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("AsyncGridFSBucket", "GridFSBucket", "AsyncGridFS", "GridFS"):
                bucket: str | None = "fs"
                for keyword in node.keywords:
                    if keyword.arg in ("bucket_name", "collection"):
                        bucket = _string(keyword.value, constants)
                add(None if bucket is None else f"{bucket}.files", node)
    return found


def violations(found: list[Access]) -> list[str]:
    problems = []
    for access in found:
        where = f"{access.path}:{access.line}"
        if access.collection == "?":
            if access.path not in DYNAMIC_ALLOWED:
                problems.append(f"{where}: a collection name computed at run time")
            continue
        owner = OWNERS.get(access.collection)
        if owner is None:
            problems.append(f"{where}: {access.collection!r} has no owner in OWNERS")
            continue
        key = (access.collection, access.path)
        if access.path.startswith(f"{owner}/") or key in EXEMPT:
            continue
        problems.append(
            f"{where}: {access.collection!r} belongs to {owner}/; call its service instead"
        )
    return problems


def _imports(tree: ast.Module, package: Path) -> dict[str, str]:
    """String constants ``tree`` imports by name from modules of ``package``."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package.name):
            parts = (node.module or "").split(".")[1:]
            module = package.joinpath(*parts).with_suffix(".py")
            if module.is_file():
                constants = _constants(ast.parse(module.read_text()))
                for alias in node.names:
                    if alias.name in constants:
                        found[alias.asname or alias.name] = constants[alias.name]
    return found


def _package_accesses(package: Path, prefix: str = "") -> list[Access]:
    found = []
    for file in sorted(package.rglob("*.py")):
        path = prefix + file.relative_to(package).as_posix()
        source = file.read_text()
        found.extend(accesses(source, path, _imports(ast.parse(source), package)))
    return found


def _backend_accesses() -> list[Access]:
    return _package_accesses(PACKAGE)


def _dashboard_accesses() -> list[Access]:
    return _package_accesses(DASHBOARD, f"{DASHBOARD_OWNER}/")


def test_every_collection_is_used_only_by_its_owner() -> None:
    found = _backend_accesses()
    assert {a.collection for a in found} >= {"users", "experiments", "drifts", "jobs"}
    assert violations(found) == []


def test_the_dashboard_uses_only_its_own_collections() -> None:
    found = _dashboard_accesses()
    assert {a.collection for a in found} == {"dashboard_sessions"}
    assert violations(found) == []
    # ... and nothing of the backend's reaches them.
    assert not [a for a in _backend_accesses() if a.collection == "dashboard_sessions"]


@pytest.mark.parametrize(
    ("source", "path", "allowed"),
    [
        # The backend may not touch the dashboard's sessions ...
        ("async def f(db):\n    await db.dashboard_sessions.find_one({})\n", "users/x.py", False),
        # ... nor the dashboard a backend collection, however it names it.
        ("async def f(db):\n    await db.drifts.find_one({})\n", "drift_dashboard/x.py", False),
        ("def f(mongo, name):\n    return mongo[name]['users']\n", "drift_dashboard/x.py", False),
        # Its own, through the client as app.py does: fine.
        (
            "C = 'dashboard_sessions'\ndef f(mongo, name):\n    return mongo[name][C]\n",
            "drift_dashboard/app.py",
            True,
        ),
    ],
)
def test_the_scan_keeps_backend_and_dashboard_collections_apart(
    source: str, path: str, allowed: bool
) -> None:
    assert (violations(accesses(source, path)) == []) is allowed


def test_no_allowance_outlives_its_reason() -> None:
    used = {(a.collection, a.path) for a in _backend_accesses()}
    assert set(EXEMPT) - used == set()


@pytest.mark.parametrize(
    "source",
    [
        "async def f(db):\n    await db.drifts.update_one({}, {})\n",
        "async def f(ctx):\n    await ctx.db.drifts.find_one({})\n",
        "async def f(db):\n    await db['drifts'].insert_one({})\n",
        "async def f(db):\n    await db.get_collection('drifts').delete_many({})\n",
        "NAME = 'drifts'\nasync def f(db):\n    await db[f'{NAME}'].find_one({})\n",
    ],
)
def test_the_scan_sees_a_write_to_drifts_from_outside_drifts(source: str) -> None:
    assert violations(accesses(source, "checks/jobs.py")) != []
    assert violations(accesses(source, "drifts/service.py")) == []


def test_the_scan_sees_batches_through_gridfs_and_unowned_collections() -> None:
    gridfs = "B = 'batches'\ndef f(db):\n    return AsyncGridFSBucket(db, bucket_name=B)\n"
    assert violations(accesses(gridfs, "experiments/service.py")) != []
    assert violations(accesses(gridfs, "checks/service.py")) == []
    unowned = "async def f(db):\n    await db.secrets.find_one({})\n"
    assert "no owner" in violations(accesses(unowned, "users/service.py"))[0]


def test_import_contracts_hold() -> None:
    """worker/ and checks/ stay independent; services do not import the web layer."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_summary_counting_is_written_once() -> None:
    """The server counts with the SDK's module and defines none of its functions again."""
    from drift_backend.baselines import columns, summary
    from drift_monitor import counting

    assert vars(summary)["counting"] is counting
    assert columns.as_float is counting.as_float
    shared = {
        name
        for name, value in vars(counting).items()
        if callable(value) and getattr(value, "__module__", "") == counting.__name__
    }
    redefined = []
    for file in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in shared:
                redefined.append(f"{file.relative_to(PACKAGE)}: {node.name}")
    # Thin wrappers that keep the server's typed names are fine; copies of the counting are not.
    assert set(redefined) <= {
        "baselines/summary.py: is_numeric",
        "baselines/summary.py: numeric_values",
    }
