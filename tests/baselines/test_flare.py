"""Files written by PyPI domino-flare 0.1.0's flare.generators.baseline(df) import.

domino-flare pins pandas 1.3.1/numpy 1.21 (no Python 3.11 wheels) and calls
DataFrame.iteritems (gone in pandas 2), so it runs in its own virtualenv with
``--no-deps`` beside pandas 1.5.3, numpy<2, dacite 1.6 and requests.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pyarrow as pa
import pytest
from drift_backend.baselines import check_violations, import_sagemaker

ROOT = Path(__file__).resolve().parents[2]
FLARE_VENV = ROOT / ".flare-venv"
REQUIREMENTS = ["pandas==1.5.3", "numpy<2", "dacite==1.6", "requests"]
FLARE = "domino-flare==0.1.0"


def _flare_python() -> Path:
    python = FLARE_VENV / "bin" / "python"
    marker = FLARE_VENV / "installed.txt"
    wanted = " ".join([FLARE, *REQUIREMENTS])
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        venv.create(FLARE_VENV, with_pip=True, clear=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *REQUIREMENTS], check=True)
        subprocess.run([*pip, "--no-deps", FLARE], check=True)
        marker.write_text(wanted)
    return python


@pytest.fixture(scope="module")
def flare_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    python = _flare_python()
    out = tmp_path_factory.mktemp("flare")
    subprocess.run(
        [str(python), str(Path(__file__).with_name("flare_script.py"))],
        cwd=out,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (out / "statistics.json").read_bytes(), (out / "constraints.json").read_bytes()


def test_flare_baseline_imports(flare_files: tuple[bytes, bytes]) -> None:
    statistics, constraints = flare_files
    assert b"NaN" in statistics  # the all-missing column: Flare writes NaN moments
    profile = import_sagemaker(statistics, constraints)
    assert profile.row_count == 200
    by = {f.name: f for f in profile.features}
    assert set(by) == {"age", "income", "balance", "city", "empty", "flag"}
    assert by["age"].inferred_type == "Integral"
    assert by["age"].kind == "numerical"
    assert by["age"].constraints.is_non_negative is True
    assert by["balance"].constraints.is_non_negative is False
    assert by["income"].missing == 20
    assert by["income"].completeness == pytest.approx(0.9)
    assert by["city"].kind == "categorical"
    assert sorted(by["city"].constraints.domains or []) == ["Oslo", "Paris", "Rome"]
    assert by["city"].distinct_count == 3
    assert by["empty"].completeness == 0.0
    assert by["empty"].numeric is not None
    assert by["empty"].numeric.mean is None
    assert by["flag"].kind == "unknown"
    # Flare writes no distribution: drift tests cannot run, constraint checks still do.
    assert not any(f.has_distribution for f in profile.features)
    age = by["age"].numeric
    assert age is not None
    assert age.min is not None
    assert age.min >= 18
    assert age.quantiles is None
    assert profile.monitoring_config.distribution_constraints.comparison_method == "Simple"


def test_bad_batch_against_flare_baseline(flare_files: tuple[bytes, bytes]) -> None:
    profile = import_sagemaker(*flare_files)
    bad = pa.table(
        {
            "age": [20, 30, 200, -5],
            "income": [100.0, 101.0, 99.0, 98.0],
            "city": ["Paris", "Berlin", "Oslo", "Rome"],
            "empty": [None, None, None, None],
            "flag": [True, False, True, True],
        }
    )
    found = {(v.feature_name, v.constraint_check_type) for v in check_violations(profile, bad)}
    assert ("age", "non_negative_check") in found
    assert ("age", "bound_check") in found
    assert ("city", "categorical_values_check") in found
    assert ("balance", "missing_column_check") in found
    assert not {v for v in found if v[0] in ("income", "empty", "flag")}
