"""What the check benchmarks share: the API client, the processes and their memory, Evidently
in its own virtualenv, accuracy against injected drift, and the machine line.

Import after putting the repository root on ``sys.path`` (the scripts do that first).
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import pandas as pd
import pyarrow as pa
from drift_backend.devstack.services import ManagedProcess

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_VENV = ROOT / "benchmarks" / ".venv-evidently"
# evidently 0.7.x does not import with pandas 3 (pandas.core.dtypes.common lost a name).
EVIDENTLY_PINS = ["evidently==0.7.23", "pandas==2.3.3", "pyarrow"]
ARROW = "application/vnd.apache.arrow.stream"


def to_ipc(df: pd.DataFrame) -> bytes:
    """The DataFrame as an Arrow IPC stream (what a user of any HTTP client would send)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# --- data ---------------------------------------------------------------------------------------

#: Distribution families of the synthetic numerical columns (standard normal, log-normal with
#: sigma 0.5, gamma with shape 2, Student-t with 5 degrees of freedom).
FAMILIES = ["normal", "lognormal", "gamma", "student_t"]


def draw(family: str, loc: float, scale: float, n: int, rng: np.random.Generator) -> Any:
    """``n`` values of a column: ``loc + scale * X`` with X of the family's standard form."""
    if family == "normal":
        return loc + scale * rng.standard_normal(n)
    if family == "lognormal":
        return loc + scale * rng.lognormal(0.0, 0.5, n)
    if family == "gamma":
        return loc + scale * rng.gamma(2.0, 1.0, n)
    return loc + scale * rng.standard_t(5, n)


def population_sd(family: str, scale: float) -> float:
    """The population standard deviation of a column (what the shift is measured in)."""
    s2 = 0.25
    base = {
        "normal": 1.0,
        "lognormal": float(np.sqrt((np.exp(s2) - 1) * np.exp(s2))),
        "gamma": float(np.sqrt(2.0)),
        "student_t": float(np.sqrt(5 / 3)),
    }[family]
    return scale * base


# --- accuracy -----------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """Reported drifted columns against the injected ones."""

    reported: set[str]
    injected: set[str]

    @property
    def tp(self) -> int:
        return len(self.reported & self.injected)

    @property
    def precision(self) -> float:
        return self.tp / len(self.reported) if self.reported else 1.0

    @property
    def recall(self) -> float:
        return self.tp / len(self.injected)

    def text(self, list_limit: int = 12) -> str:
        def names(values: set[str]) -> str:
            items = sorted(values)
            more = f" and {len(items) - list_limit} more" if len(items) > list_limit else ""
            return ", ".join(items[:list_limit]) + more if items else "none"

        return (
            f"{len(self.reported)} reported, precision {self.precision:.2f}, recall "
            f"{self.recall:.2f}; false alarms: {names(self.reported - self.injected)}; "
            f"missed: {names(self.injected - self.reported)}"
        )


# --- processes ----------------------------------------------------------------------------------


def _cli() -> str:
    return str(Path(sys.executable).parent / "drift-monitor-server")


def has_worker_command() -> bool:
    out = subprocess.run([_cli(), "--help"], capture_output=True, text=True, check=False)
    return any(line.split()[:1] == ["worker"] for line in out.stdout.splitlines())


def backend_env(
    mongo_url: str,
    issuer: str,
    tmp: Path,
    *,
    database: str,
    embedded: bool,
    worker_processes: int,
) -> dict[str, str]:
    return {
        **os.environ,
        "DRIFT_MODE": "development",
        "DRIFT_MONGODB_URL": mongo_url,
        "DRIFT_MONGODB_DATABASE": database,
        "DRIFT_TRUSTED_ISSUERS": issuer,
        "DRIFT_ALLOW_INSECURE_ISSUERS": "true",
        "DRIFT_SECRETS_DIR": str(tmp / "no-secrets"),
        "DRIFT_MAX_UPLOAD_BYTES": str(2 << 30),  # a 1M-row reference is ~0.5 GB of Arrow
        "DRIFT_MAX_CHECK_WAIT_SECONDS": "600",
        "DRIFT_EMBEDDED_WORKER": "true" if embedded else "false",
        "DRIFT_WORKER_PROCESSES": str(worker_processes),
        "DRIFT_LOG_LEVEL": "warning",
    }


def start_worker(env: dict[str, str], log: Path, processes: int) -> ManagedProcess:
    argv = [_cli(), "worker", "--processes", str(processes)]
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    time.sleep(1.0)
    proc = ManagedProcess("worker", process, "", log)
    if process.poll() is not None:
        raise RuntimeError(f"worker exited early:\n{proc.log_tail()}")
    return proc


def worker_label(separate: bool, processes: int) -> str:
    if separate:
        return f"`drift-monitor-server worker --processes {processes}` (a separate process)"
    return (
        f"embedded in the backend (`DRIFT_EMBEDDED_WORKER=true`, "
        f"`DRIFT_WORKER_PROCESSES={processes}`)"
    )


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *descendants(int(child))]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def peak_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


@dataclass
class Memory:
    main: float  # the worker process itself (the backend, with an embedded worker)
    children: list[float]  # its statistics processes (and multiprocessing's resource tracker)

    @classmethod
    def of(cls, pid: int) -> Memory:
        return cls(peak_mib(pid), sorted((peak_mib(c) for c in descendants(pid)), reverse=True))

    def text(self, main_label: str) -> str:
        kids = " + ".join(f"{c:.0f}" for c in self.children) or "none"
        return (
            f"{main_label} {self.main:.0f} MiB; child processes {kids} MiB; "
            f"sum of peaks {self.main + sum(self.children):.0f} MiB"
        )


# --- our API ------------------------------------------------------------------------------------


class Api:
    """A synchronous client of one new experiment, as a user script would hold it."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx2.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=900
        )
        self.http.post("/api/v1/user").raise_for_status()
        body = {"name": f"bench-{uuid.uuid4().hex[:8]}"}
        self.experiment = self.http.post("/api/v1/experiment", json=body).raise_for_status()
        self.prefix = f"/api/v1/experiment/{self.experiment.json()['id']}"

    def baseline(self, df: pd.DataFrame, name: str) -> str:
        response = self.http.post(
            f"{self.prefix}/baseline",
            content=to_ipc(df),
            headers={"content-type": ARROW},
            params={"name": name, "model": "m"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"baseline: {response.status_code} {response.text[:500]}")
        return str(response.json()["id"])

    def check(self, df: pd.DataFrame, baseline: str) -> dict[str, Any]:
        """POST the batch, wait for the run to finish, return the report."""
        response = self.http.post(
            f"{self.prefix}/check",
            content=to_ipc(df),
            headers={"content-type": ARROW},
            params={"model": "m", "baseline": baseline, "wait": 600},
        )
        if response.status_code not in (200, 202):
            raise RuntimeError(f"check: {response.status_code} {response.text[:500]}")
        run = response.json()
        while run["job_status"] == "Running":
            time.sleep(0.05)
            run = self.http.get(f"{self.prefix}/drift/{run['id']}").raise_for_status().json()
        if run["job_status"] != "Completed":
            raise RuntimeError(f"check ended {run['job_status']}: {run.get('error')}")
        report: dict[str, Any] = (
            self.http.get(f"{self.prefix}/drift/{run['id']}/report").raise_for_status().json()
        )
        return report


def tests_used(report: dict[str, Any]) -> str:
    """``kind: test xN, ...; correction `bh```: which tests the report's features ran."""
    used: dict[str, int] = {}
    for feature in report["features"]:
        key = f"{feature['kind']}: {feature['test']}"
        used[key] = used.get(key, 0) + 1
    text = ", ".join(f"{k} x{v}" for k, v in sorted(used.items()))
    return f"{text}; correction `{report['correction']}`"


# --- Evidently (own venv, subprocess) -----------------------------------------------------------

EVIDENTLY_SCRIPT = r"""
import json, resource, sys, time
import pandas as pd
import evidently

ref_path, cur_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
num, cat = json.loads(sys.argv[4]), json.loads(sys.argv[5])
try:  # evidently >= 0.7
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    legacy = False
except ImportError:  # evidently <= 0.6
    from evidently import ColumnMapping
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    legacy = True

def run(ref, cur):
    if legacy:
        report = Report(metrics=[DataDriftPreset()])
        mapping = ColumnMapping(numerical_features=num, categorical_features=cat)
        report.run(reference_data=ref, current_data=cur, column_mapping=mapping)
        result = report.as_dict()
        by_col = result["metrics"][1]["result"]["drift_by_columns"]
        return {c for c, r in by_col.items() if r["drift_detected"]}
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    drifted = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            pvalue = "p_value" in config["method"]
            if (value < threshold) if pvalue else (value >= threshold):
                drifted.add(config["column"])
    return drifted

ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
run(ref.head(1000), cur.head(1000))  # warm-up: lazy imports and registries
times, drifted = [], set()
for _ in range(repeats):
    t0 = time.perf_counter()
    drifted = run(ref, cur)
    times.append(time.perf_counter() - t0)
print(json.dumps({
    "version": evidently.__version__, "pandas": pd.__version__, "legacy": legacy,
    "times": times, "drifted": sorted(drifted),
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def evidently_python() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {EVIDENTLY_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", *EVIDENTLY_PINS]
        subprocess.run(pip, check=True)
    return python


def run_evidently(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    repeats: int,
    tmp: Path,
    numerical: Iterable[str],
    categorical: Iterable[str] = (),
) -> dict[str, Any]:
    """``Report([DataDriftPreset()]).run(current, reference)`` in Evidently's own venv, on
    the frames written to Parquet first (not timed): its times, drifted columns, version and
    peak resident memory (``peak_mib``, the subprocess's ``ru_maxrss``)."""
    ref.to_parquet(tmp / "ref.parquet", index=False)
    cur.to_parquet(tmp / "cur.parquet", index=False)
    script = tmp / "evidently_run.py"
    script.write_text(EVIDENTLY_SCRIPT)
    argv = [str(evidently_python()), str(script), str(tmp / "ref.parquet")]
    argv += [str(tmp / "cur.parquet"), str(repeats)]
    argv += [json.dumps(list(numerical)), json.dumps(list(categorical))]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"evidently run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the machine --------------------------------------------------------------------------------


def machine(evidently: dict[str, Any] | None = None) -> str:
    """Commit, cores, CPU, RAM, Python, the time, the packages that matter and Evidently's."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"
    )
    pkgs = ", ".join(
        f"{p} {version(p)}"
        for p in ("fastapi", "uvicorn", "pyarrow", "numpy", "scipy", "pandas", "secantusdb")
    )
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    line = (
        f"commit {git or '?'}; nproc {len(os.sched_getaffinity(0))}, CPU {model}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {pkgs}"
    )
    if evidently:
        line += f"; Evidently {evidently['version']} (own venv, pandas {evidently['pandas']})"
    return line
