"""Batches reduced at upload decide like the whole batch, and are a fraction of its size."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.ingest import arrow_stream
from drift_backend.baselines.profile import build_profile
from drift_backend.checks.config import DriftConfig
from drift_backend.checks.engine import run_check
from drift_backend.checks.reduce import (
    EXACT_VALUES,
    GRID,
    decode,
    encode,
    exact_batch,
    needs_raw,
    reduce_batch,
)


def _table(seed: int, n: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "a": rng.normal(shift, 1.0, n),
            "b": rng.gamma(2.0, 1.0 + shift, n),
            "c": rng.choice(["x", "y", "z"], n),
        }
    )


def _ipc_size(table: pa.Table) -> int:
    return len(arrow_stream(table))


def test_small_batches_keep_every_value() -> None:
    profile = build_profile(_table(1, 3000))
    reduced = reduce_batch(_table(2, 1000), profile)
    assert all(v.exact for v in reduced.numeric.values())
    assert reduced.numeric["a"].values.size == 1000
    assert np.all(np.diff(reduced.numeric["a"].values) >= 0)


def test_round_trip_through_bytes() -> None:
    profile = build_profile(_table(1, 3000))
    reduced = reduce_batch(_table(3, EXACT_VALUES + 5000), profile)
    back = decode(encode(reduced))
    assert back.summary == reduced.summary
    for name, current in reduced.numeric.items():
        assert back.numeric[name].exact == current.exact is False
        np.testing.assert_array_equal(back.numeric[name].values, current.values)
        assert current.values.size == GRID


@pytest.mark.parametrize(
    ("shift", "numerical_test"), [(0.0, "ks"), (0.02, "ks"), (0.03, "wasserstein"), (0.1, "ks")]
)
def test_reduced_batches_decide_like_whole_ones(shift: float, numerical_test: str) -> None:
    profile = build_profile(_table(1, 60_000))
    current = _table(4, 80_000, shift)
    config = DriftConfig(numerical_test=numerical_test)
    whole = run_check(profile, exact_batch(current, profile), config)
    reduced = run_check(profile, decode(encode(reduce_batch(current, profile))), config)
    assert reduced.drifted_features == whole.drifted_features
    for a, b in zip(whole.features, reduced.features, strict=True):
        assert a.test == b.test
        assert a.histogram == b.histogram
        if a.statistic is not None:
            assert b.statistic == pytest.approx(a.statistic, abs=2e-4)
        if a.p_value is not None and a.p_value > 1e-12:
            assert b.p_value == pytest.approx(a.p_value, rel=0.1)


def test_reduced_batch_is_a_fraction_of_the_rows() -> None:
    profile = build_profile(_table(1, 5000))
    current = _table(5, 200_000)
    assert len(encode(reduce_batch(current, profile))) < _ipc_size(current) / 5


def test_tests_that_need_every_value_keep_the_rows() -> None:
    assert not needs_raw(DriftConfig())
    assert not needs_raw(DriftConfig(numerical_test="ks"))
    assert needs_raw(DriftConfig(numerical_test="mann_whitney"))
    assert needs_raw(DriftConfig.model_validate({"features": {"a": {"test": "energy_distance"}}}))
    profile = build_profile(_table(1, 3000))
    reduced = reduce_batch(_table(6, EXACT_VALUES + 1), profile)
    report = run_check(profile, reduced, DriftConfig(numerical_test="cramer_von_mises"))
    a = next(f for f in report.features if f.feature == "a")
    assert a.untestable is not None
    assert "reduced" in a.untestable


def test_row_sample_only_when_asked() -> None:
    profile = build_profile(_table(1, 3000))
    assert profile.sample is not None
    with_rows = reduce_batch(_table(2, 1000), profile)
    without = reduce_batch(_table(2, 1000), profile, rows=False)
    assert with_rows.sample is not None
    assert with_rows.sample.features == profile.sample.features
    assert without.sample is None
    assert without.summary == with_rows.summary
