"""Server-side checks through the SDK: baselines, raw and summary checks, reports, errors.

The session ``live_backend`` runs no worker, so this module serves its own backend with the
embedded worker, plus a worker-less one with small upload limits (its checks never finish).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from drift_backend.baselines.model import Bins as ServerBins
from drift_backend.baselines.summary import summarize as server_summarize
from drift_backend.devstack.services import ManagedProcess
from drift_backend.main import create_app
from drift_monitor import (
    Baseline,
    Bins,
    CheckTimeout,
    Client,
    ConfigurationError,
    DataError,
    DriftMonitor,
    Experiment,
    FeatureResult,
    Histogram,
    NotFoundError,
    PayloadTooLargeError,
    Report,
    ValidationError,
    Violation,
    _data,
    register,
    summarize,
)
from drift_monitor.cli import main

from tests.client.conftest import unique
from tests.conftest import make_settings
from tests.support.jwt_issuer import JWTIssuer
from tests.support.threads import ThreadedServer


@pytest.fixture(scope="module")
def worker_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[ThreadedServer]:
    settings = make_settings(
        mongodb, [issuer.url, oidc_provider.url], embedded_worker=True, job_lease_seconds=5
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def small_backend(
    mongodb: ManagedProcess, issuer: JWTIssuer, oidc_provider: ManagedProcess
) -> Iterator[ThreadedServer]:
    """No worker (checks stay Running) and small limits."""
    settings = make_settings(
        mongodb,
        [issuer.url, oidc_provider.url],
        max_upload_bytes=50_000,
        max_batch_rows=1000,
    )
    with ThreadedServer(create_app(settings)) as server:
        yield server


def _client(server: ThreadedServer, issuer: JWTIssuer) -> Client:
    client = Client(server.url, token=lambda: issuer.token("alice"), sleep=lambda _: None)
    register(accept_terms=True, client=client)
    return client


@pytest.fixture
def client(worker_backend: ThreadedServer, issuer: JWTIssuer) -> Iterator[Client]:
    with _client(worker_backend, issuer) as c:
        yield c


@pytest.fixture
def small(small_backend: ThreadedServer, issuer: JWTIssuer) -> Iterator[Client]:
    with _client(small_backend, issuer) as c:
        yield c


@pytest.fixture
def exp(client: Client) -> Experiment:
    return client.create_experiment(unique("checks"))


def frame(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Seeded batch; ``shift`` moves ``x`` by that many standard deviations."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "y": rng.exponential(2.0, n),
            "c": rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]),
        }
    )


REFERENCE = frame(1, 3000)
CLEAN = frame(2, 2000)
DRIFTED = frame(3, 2000, shift=1.0)
KINDS = {"x": "numerical", "y": "numerical", "c": "categorical"}


# Baselines ---------------------------------------------------------------------------------
def test_upload_every_data_form(client: Client, exp: Experiment, tmp_path: Path) -> None:
    table = pa.Table.from_pandas(REFERENCE, preserve_index=False)
    csv_path = tmp_path / "reference.csv"
    pa_csv.write_csv(table, csv_path)
    parquet_path = tmp_path / "reference.parquet"
    pq.write_table(table, parquet_path)
    forms: dict[str, Any] = {
        "pandas": REFERENCE,
        "arrow": table,
        "dict": {name: REFERENCE[name].tolist() for name in REFERENCE.columns},
        "csv": str(csv_path),
        "parquet": parquet_path,
    }
    uploaded: dict[str, Baseline] = {}
    for name, data in forms.items():
        baseline = client.upload_baseline(exp.id, data, name=name, model="m1")
        assert baseline.row_count == 3000, name
        assert {f.name: f.kind for f in baseline.features} == KINDS, name
        uploaded[name] = baseline
    x_means = {round(b.features[0].mean or 0.0, 9) for b in uploaded.values()}
    assert len(x_means) == 1, "every form carries the same values"

    listed = client.list_baselines(exp.id)
    assert [b.name for b in listed] == ["parquet", "csv", "dict", "arrow", "pandas"]
    assert all(b.features == [] for b in listed)
    got = client.get_baseline(exp.id, uploaded["csv"].id)
    assert got == uploaded["csv"]
    bins = client.get_bins(exp.id, got.id)
    assert [f.name for f in bins.features] == ["x", "y", "c"]
    assert bins.features[2].categories == ["a", "b", "c"]
    client.delete_baseline(exp.id, got.id)
    with pytest.raises(NotFoundError):
        client.get_baseline(exp.id, got.id)


def test_upload_without_pyarrow_sends_json_columns(
    client: Client, exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_data, "_pyarrow", lambda: None)
    body = _data.encode({"x": [1.5, 2.5, None], "c": ["a", "b", "a"]})
    assert body.media_type == "application/json"
    baseline = client.upload_baseline(exp.id, {"x": [1.5, 2.5, None, 4.0], "c": list("abab")})
    assert baseline.row_count == 4
    with pytest.raises(ConfigurationError, match=r"drift-monitor\[data\]"):
        client.upload_baseline(exp.id, REFERENCE)


def test_polars_dataframe(client: Client, exp: Experiment) -> None:
    import polars as pl

    baseline = client.upload_baseline(exp.id, pl.from_pandas(REFERENCE), model="m1")
    assert baseline.row_count == 3000
    assert {f.name for f in baseline.features} == set(REFERENCE.columns)
    run = client.check(exp.id, pl.from_pandas(DRIFTED), model="m1", wait=60)
    assert run.job_status == "Completed"
    assert "x" in client.get_report(exp.id, run.id).drifted_features


def test_progress_callback_sees_increasing_bytes(
    client: Client, exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_data, "CHUNK_SIZE", 4096)
    calls: list[tuple[int, int]] = []
    client.upload_baseline(
        exp.id, REFERENCE, progress=lambda sent, total: calls.append((sent, total))
    )
    total = calls[0][1]
    assert total > 4 * 4096
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    sent = [s for s, _ in calls]
    assert sent == sorted(sent)
    assert len(set(sent)) == len(sent) > 4


# Checks ------------------------------------------------------------------------------------
def test_monitor_check_finds_injected_drift_only_there(client: Client, exp: Experiment) -> None:
    client.set_drift_config(exp.id, {"drift_share": 0.3})
    with DriftMonitor(exp.name, "m1", ["nightly"], client=client) as monitor:
        baseline = monitor.baseline(REFERENCE, name="train")
        assert baseline.model == "m1"
        drifted = monitor.check(DRIFTED)
        clean = monitor.check(CLEAN, baseline=baseline)
    assert isinstance(drifted, Report)
    assert drifted.dataset_drift is True
    assert drifted.drifted_features == ["x"]
    assert drifted.feature("x").drifted is True
    assert drifted.drift is not None
    assert drifted.drift.job_status == "Completed"
    assert drifted.drift.tags == ["nightly"]
    assert clean is not None
    assert clean.dataset_drift is False
    assert clean.drifted_features == []
    # The context's own run lists the check runs; they are runs of their own.
    assert monitor.drift is not None
    own = client.get_drift(exp.id, monitor.drift.id)
    assert own.parameters["check_runs"] == [drifted.drift.id, clean.drift.id]  # type: ignore[union-attr]
    assert own.drift_detected is False


def test_report_is_typed(client: Client, exp: Experiment) -> None:
    client.upload_baseline(exp.id, REFERENCE, model="m1")
    run = client.check(exp.id, DRIFTED, model="m1", wait=60)
    assert run.job_status == "Completed"
    report = client.get_report(exp.id, run.id)
    assert report.n_tested == 3
    assert report.correction == "bh"
    assert 0 < report.alpha < 1
    assert all(isinstance(f, FeatureResult) for f in report.features)
    assert all(isinstance(v, Violation) for v in report.violations)
    x = report.feature("x")
    assert x.kind == "numerical"
    assert x.test is not None
    assert x.n_reference == 3000
    assert x.n_current == 2000
    assert isinstance(x.histogram, Histogram)
    assert x.histogram.edges is not None
    assert len(x.histogram.current) == len(x.histogram.edges) + 1
    assert sum(x.histogram.current) == 2000
    c = report.feature("c").histogram
    assert c is not None
    assert c.categories == ["a", "b", "c"]
    with pytest.raises(KeyError):
        report.feature("nope")
    assert report.mode == "raw"
    assert report.multivariate is None  # opt-in


def test_report_carries_the_multivariate_result(client: Client, exp: Experiment) -> None:
    client.set_drift_config(exp.id, {"multivariate": True})
    client.upload_baseline(exp.id, REFERENCE, model="m1")
    run = client.check(exp.id, DRIFTED, model="m1", wait=60)
    report = client.get_report(exp.id, run.id)
    assert report.multivariate is not None
    assert report.multivariate["test"] == "mmd"
    assert report.multivariate["features"] == ["x", "y"]
    assert report.multivariate["drifted"] is True


def test_report_carries_prediction_drift(client: Client, exp: Experiment) -> None:
    client.set_drift_config(exp.id, {"prediction": "c"})
    client.upload_baseline(exp.id, REFERENCE, model="m1")
    predicted = DRIFTED.assign(c=np.where(DRIFTED["x"] > 1.0, "c", DRIFTED["c"]))
    run = client.check(exp.id, predicted, model="m1", wait=60)
    report = client.get_report(exp.id, run.id)
    assert report.prediction is not None
    assert report.prediction.feature == "c"
    assert report.prediction.drifted is True
    assert [f.feature for f in report.features] == ["x", "y"]
    assert run.parameters["check"]["prediction_drift"] is True


def test_summary_only_reaches_the_same_decisions(client: Client, exp: Experiment) -> None:
    client.set_drift_config(
        exp.id,
        {
            "numerical_test": "jensen_shannon",
            "categorical_test": "jensen_shannon",
            "drift_share": 0.3,
        },
    )
    baseline = client.upload_baseline(exp.id, REFERENCE, model="m1")
    for batch in (DRIFTED, CLEAN):
        raw_run = client.check(exp.id, batch, model="m1", wait=60)
        summary_run = client.check(exp.id, batch, model="m1", wait=60, summary_only=True)
        assert summary_run.parameters["check"]["mode"] == "summary"
        assert summary_run.parameters["check"]["baseline_id"] == baseline.id
        raw = client.get_report(exp.id, raw_run.id)
        summary = client.get_report(exp.id, summary_run.id)
        assert raw.drifted_features == summary.drifted_features
        assert raw.dataset_drift == summary.dataset_drift
        for r, s in zip(raw.features, summary.features, strict=True):
            assert (r.feature, r.test, r.drifted) == (s.feature, s.test, s.drifted)
            assert r.statistic == pytest.approx(s.statistic, rel=1e-9)
    assert raw.drifted_features == []  # the clean batch
    assert client.get_report(
        exp.id, client.check(exp.id, DRIFTED, model="m1", wait=60, summary_only=True).id
    ).drifted_features == ["x"]


def _mixed_reference() -> pa.Table:
    rng = np.random.default_rng(7)
    n = 500
    start = dt.datetime(2024, 1, 1)
    x = rng.normal(10.0, 2.0, n)
    x[::50] = np.nan
    return pa.table(
        {
            "x": x,
            "n": rng.integers(0, 20, n),
            "m": rng.integers(0, 100_000, n),
            "c": rng.choice(["red", "green", "blue"], n),
            "b": rng.choice([True, False], n),
            "t": pa.array([start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 900, n)]),
            "gone": rng.normal(0, 1, n),
        }
    )


def _mixed_current() -> pa.Table:
    rng = np.random.default_rng(8)
    n = 300
    x: list[Any] = [str(v) for v in rng.normal(11.0, 3.0, n)]
    x[:5] = ["oops", None, "inf", " 12.5 ", "nan"]
    x[5:8] = ["40", "-3", "1e1"]  # above max, negative, scientific
    n_col = rng.integers(-2, 30, n).astype(float)
    n_col[:4] = [1.5, np.nan, 2.0, 7.25]
    c = rng.choice(["red", "green", "purple", "black"], n).tolist()
    c[0] = None
    b: list[Any] = rng.choice(["True", "false", "maybe"], n).tolist()
    b[1] = None
    return pa.table(
        {
            "x": pa.array(x, pa.string()),
            "n": n_col,
            "m": rng.integers(-5, 120_000, n),
            "c": pa.array(c).dictionary_encode(),
            "b": b,
            "t": pa.array([f"2024-0{m}-15T10:00:00" for m in rng.integers(1, 3, n)]),
            "extra": np.arange(n),
        }
    )


def test_client_summary_equals_server_summarize(client: Client, exp: Experiment) -> None:
    baseline = client.upload_baseline(exp.id, _mixed_reference())
    kinds = {f.name: f.kind for f in baseline.features}
    assert kinds == {
        "x": "numerical",
        "n": "categorical",  # few distinct integers: Integral categories
        "m": "numerical",
        "c": "categorical",
        "b": "boolean",
        "t": "datetime",
        "gone": "numerical",
    }
    bins = client.get_bins(exp.id, baseline.id)
    raw_bins = client.request("GET", f"/experiment/{exp.id}/baseline/{baseline.id}/bins").json()
    current = _mixed_current()
    expected = server_summarize(current, ServerBins.model_validate(raw_bins)).model_dump(
        mode="json"
    )
    ours = json.loads(json.dumps(summarize(current, bins)))
    assert ours == expected
    by_name = {f["name"]: f for f in ours["features"]}
    assert by_name["gone"]["present"] is False
    assert ours["extra_columns"] == ["extra"]
    assert by_name["x"]["type_mismatch"] == 1
    assert by_name["x"]["above_max"] > 0
    assert by_name["n"]["type_mismatch"] == 2  # 1.5 and 7.25 in an Integral feature
    assert sorted(by_name["c"]["unseen_values"]) == ["black", "purple"]
    assert by_name["b"]["type_mismatch"] > 0
    # A DataFrame and a pandas round trip summarize the same as the Arrow table.
    simple = client.upload_baseline(exp.id, REFERENCE)
    simple_bins = client.get_bins(exp.id, simple.id)
    path = f"/experiment/{exp.id}/baseline/{simple.id}/bins"
    server_bins = ServerBins.model_validate(client.request("GET", path).json())
    table = pa.Table.from_pandas(DRIFTED, preserve_index=False)
    assert summarize(DRIFTED, simple_bins) == json.loads(
        server_summarize(table, server_bins).model_dump_json()
    )


# Errors and timeouts -----------------------------------------------------------------------
def test_limits_map_to_payload_too_large_with_the_field(small: Client) -> None:
    exp = small.create_experiment(unique("limits"))
    with pytest.raises(PayloadTooLargeError) as rows:
        small.upload_baseline(exp.id, frame(1, 1001))
    assert rows.value.status == 413
    assert [e.field for e in rows.value.errors] == ["max_rows"]
    with pytest.raises(PayloadTooLargeError) as size:
        small.upload_baseline(exp.id, {"s": ["x" * 100] * 900})
    assert size.value.status == 413
    assert size.value.code == "payload_too_large"


def test_byte_limit_names_max_bytes(small: Client) -> None:
    exp = small.create_experiment(unique("limits"))
    with pytest.raises(PayloadTooLargeError) as size:
        small.upload_baseline(exp.id, {"s": ["x" * 100] * 900})
    assert [e.field for e in size.value.errors] == ["max_bytes"]


def test_bad_data_maps_to_validation_error(client: Client, exp: Experiment, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as empty:
        client.upload_baseline(exp.id, {"x": []})
    assert [e.field for e in empty.value.errors] == ["rows"]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    with pytest.raises(ValidationError) as body:
        client.upload_baseline(exp.id, broken)
    assert [e.field for e in body.value.errors] == ["body"]
    with pytest.raises(ValidationError) as none:
        client.check(exp.id, CLEAN, model="m1", summary_only=True)
    assert [e.field for e in none.value.errors] == ["baseline"]
    with pytest.raises(DataError, match="unknown file type"):
        client.upload_baseline(exp.id, tmp_path / "data.xlsx")
    with pytest.raises(DataError, match="no such file"):
        client.upload_baseline(exp.id, tmp_path / "missing.csv")
    with pytest.raises(DataError):
        client.upload_baseline(exp.id, b"raw")
    with pytest.raises(DataError):
        client.upload_baseline(exp.id, 42)


def test_check_still_running_raises_timeout(small: Client) -> None:
    exp = small.create_experiment(unique("timeout"))
    small.upload_baseline(exp.id, frame(1, 300))
    with (
        DriftMonitor(exp.name, "m1", client=small) as monitor,
        pytest.raises(CheckTimeout) as timeout,
    ):
        monitor.check(frame(2, 200), wait=0.3, timeout=1.0)
    assert isinstance(timeout.value, TimeoutError)
    assert small.get_drift(exp.id, timeout.value.drift_id).job_status == "Running"
    with pytest.raises(NotFoundError, match="still running"):
        small.get_report(exp.id, timeout.value.drift_id)
    assert monitor.check_runs == [timeout.value.drift_id]


# CLI ---------------------------------------------------------------------------------------
def test_cli_baseline_check_report(
    client: Client,
    exp: Experiment,
    worker_backend: ThreadedServer,
    issuer: JWTIssuer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DRIFT_MONITOR_URL", worker_backend.url)
    monkeypatch.setenv("DRIFT_MONITOR_TOKEN", issuer.token("alice"))
    client.set_drift_config(exp.id, {"drift_share": 0.3})
    reference, current = tmp_path / "ref.csv", tmp_path / "cur.parquet"
    REFERENCE.to_csv(reference, index=False)
    DRIFTED.to_parquet(current, index=False)
    assert (
        main(["baseline", "upload", exp.name, str(reference), "--model", "m1", "--name", "t"]) == 0
    )
    assert "(3000 rows, 3 features)" in capsys.readouterr().out
    assert main(["check", exp.name, str(current), "--model", "m1", "--summary-only"]) == 0
    out = capsys.readouterr().out
    drift_id = out.splitlines()[0].split()[-1]
    lines = {line.split()[0]: line for line in out.splitlines()[2:5]}
    assert lines["x"].endswith("DRIFT")
    assert lines["y"].endswith("ok")
    assert lines["c"].endswith("ok")
    assert "dataset drift: yes (1 of 3 tested features drifted" in out
    assert main(["--json", "report", exp.id, drift_id]) == 0
    assert json.loads(capsys.readouterr().out)["drifted_features"] == ["x"]
    assert main(["baseline", "list", exp.name]) == 0
    assert " t " in capsys.readouterr().out
    assert main(["report", exp.name, "no-such-run"]) == 1
    assert "404" in capsys.readouterr().err


def test_stderr_progress_line() -> None:
    import io

    stream = io.StringIO()
    progress = _data.StderrProgress(stream)
    progress(0, 3 << 20)
    progress(3 << 20, 3 << 20)
    assert stream.getvalue() == "\ruploading 0.0/3.0 MiB (0%)\ruploading 3.0/3.0 MiB (100%)\n"
    assert _data.default_progress(1 << 30) is None  # stderr is not a terminal under pytest


def test_any_object_with_to_arrow_is_accepted() -> None:
    class FrameLike:  # what polars.DataFrame offers
        def to_arrow(self) -> pa.Table:
            return pa.table({"x": [1.0, 2.0]})

    body = _data.encode(FrameLike())
    assert body.media_type == "application/vnd.apache.arrow.stream"
    assert b"".join(body.chunks()) == body.data
    assert summarize(FrameLike(), Bins(features=[]))["row_count"] == 2


def test_client_summary_counts_values_outside_an_empty_domain_like_the_server() -> None:
    from drift_backend.baselines import bins as server_bins
    from drift_backend.baselines import build_profile

    reference = pa.table({"code": pa.array([None] * 50, pa.string()), "x": np.arange(50.0)})
    served = server_bins(build_profile(reference))
    current = pa.table({"code": ["a", "b", None, "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    expected = server_summarize(current, served).model_dump(mode="json")
    ours = json.loads(
        json.dumps(summarize(current, Bins.from_json(served.model_dump(mode="json"))))
    )
    assert ours == expected
    assert next(f for f in ours["features"] if f["name"] == "code")["out_of_domain"] == 3
