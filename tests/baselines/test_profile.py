"""Baseline profiles: kinds, statistics against numpy, BSON size, summary mode."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import bson
import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines import Profile, bins, build_profile, profile_batch, summarize
from drift_backend.baselines.repository import encode
from drift_backend.baselines.summary import numeric_values
from drift_backend.stats.histogram import bin_counts

RNG_SEED = 20240611


def _reference(n: int = 5000) -> pa.Table:
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(10.0, 2.0, n)
    x[::50] = np.nan
    start = datetime(2024, 1, 1)
    return pa.table(
        {
            "x": x,
            "amount": rng.exponential(3.0, n),
            "children": rng.integers(0, 4, n),
            "user_id": rng.integers(0, 10**6, n),
            "city": pa.array(rng.choice(["Paris", "Oslo", "Rome"], n)).dictionary_encode(),
            "flag": rng.random(n) < 0.3,
            "seen": pa.array([start + timedelta(hours=int(h)) for h in rng.integers(0, 999, n)]),
            "empty": pa.nulls(n),
        }
    )


def test_kinds_and_statistics() -> None:
    table = _reference()
    profile = build_profile(table, quantiles=101, bins=10)
    kinds = {f.name: f.kind for f in profile.features}
    assert kinds == {
        "x": "numerical",
        "amount": "numerical",
        "children": "categorical",
        "user_id": "numerical",
        "city": "categorical",
        "flag": "boolean",
        "seen": "datetime",
        "empty": "unknown",
    }
    x = table.column("x").to_numpy()
    finite = x[np.isfinite(x)]
    f = profile.feature("x")
    assert f is not None
    assert f.numeric is not None
    assert f.numeric.quantiles is not None
    assert f.missing == 100
    assert f.completeness == pytest.approx(0.98)
    assert f.numeric.mean == pytest.approx(finite.mean())
    assert f.numeric.std == pytest.approx(finite.std(ddof=1))
    assert (f.numeric.min, f.numeric.max) == (finite.min(), finite.max())
    np.testing.assert_allclose(f.numeric.quantiles, np.quantile(finite, np.linspace(0, 1, 101)))
    assert f.numeric.edges is not None
    assert f.numeric.counts is not None
    assert len(f.numeric.counts) == len(f.numeric.edges) + 1 == 12
    assert f.numeric.counts[0] == f.numeric.counts[-1] == 0
    assert sum(f.numeric.counts) == finite.size
    assert f.constraints.is_non_negative is True
    amount = profile.feature("amount")
    assert amount is not None
    assert amount.constraints.is_non_negative is True
    children = profile.feature("children")
    assert children is not None
    assert children.categorical is not None
    assert children.numeric
    assert sorted(children.categorical.values) == ["0", "1", "2", "3"]
    assert children.constraints.domains is not None
    city = profile.feature("city")
    assert city is not None
    assert city.categorical is not None
    assert sum(city.categorical.counts) == 5000
    assert city.inferred_type == "String"
    assert city.constraints.domains == city.categorical.values
    flag = profile.feature("flag")
    assert flag is not None
    assert flag.categorical is not None
    assert set(flag.categorical.values) == {"true", "false"}
    seen = profile.feature("seen")
    assert seen is not None
    assert seen.numeric is not None
    assert seen.numeric.min is not None
    assert seen.numeric.min >= datetime(2024, 1, 1).timestamp() - 86400
    empty = profile.feature("empty")
    assert empty is not None
    assert not empty.has_distribution
    assert empty.completeness == 0.0


def test_document_round_trip_is_json_clean() -> None:
    profile = build_profile(_reference(500))
    doc = profile.to_document()
    encoded = bson.encode(doc)
    back = Profile.from_document({"_id": "x", **bson.decode(encoded)})
    assert back == profile.with_values({})  # the document holds no kept values
    stored = encode(profile)  # as the service stores it: JSON profile, Arrow values
    assert stored.values is not None
    assert stored.parse() == profile

    def walk(value: object) -> None:
        assert not isinstance(value, np.generic)
        if isinstance(value, float):
            assert np.isfinite(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(doc)


def test_categories_are_capped_with_other_bucket() -> None:
    values = [f"v{i % 300}" for i in range(3000)]
    profile = build_profile(pa.table({"c": values}), max_categories=100)
    f = profile.feature("c")
    assert f is not None
    assert f.categorical is not None
    assert f.categorical.capped
    assert len(f.categorical.values) == 100
    assert sum(f.categorical.counts) + f.categorical.other_count == 3000
    assert f.distinct_count == 300
    assert f.constraints.domains is None


def test_one_million_by_fifty_fits_in_ten_megabytes() -> None:
    rng = np.random.default_rng(RNG_SEED)
    n = 1_000_000
    columns: dict[str, pa.Array] = {
        f"num_{i}": pa.array(rng.normal(i, 1.0 + i, n)) for i in range(40)
    }
    labels = np.array([f"category-{j:05d}" for j in range(2000)])
    for i in range(10):
        columns[f"cat_{i}"] = pa.array(labels[rng.integers(0, 2000, n)])
    table = pa.table(columns)
    started = time.perf_counter()
    profile = build_profile(table)
    elapsed = time.perf_counter() - started
    size = len(bson.encode(profile.to_document()))
    print(f"1M x 50 profile: {size} bytes BSON, built in {elapsed:.2f} s")
    assert size <= 10 * 1024 * 1024
    assert profile.row_count == n
    assert len(profile.features) == 50


def test_summary_matches_reference_binning() -> None:
    reference = _reference()
    profile = build_profile(reference)
    rng = np.random.default_rng(RNG_SEED + 1)
    current = pa.table(
        {
            "x": rng.normal(11.0, 2.0, 800),
            "amount": rng.exponential(3.0, 800) - 0.5,
            "children": rng.integers(0, 6, 800),
            "city": rng.choice(["Paris", "Oslo", "Berlin"], 800),
            "flag": rng.random(800) < 0.5,
            "extra": np.zeros(800),
        }
    )
    summary = profile_batch(current, profile)
    assert summary.extra_columns == ["extra"]
    x = summary.feature("x")
    fx = profile.feature("x")
    assert x is not None
    assert fx is not None
    assert fx.numeric
    assert fx.numeric.edges
    assert x.counts == bin_counts(current.column("x").to_numpy(), fx.numeric.edges).tolist()
    assert x.mean == pytest.approx(current.column("x").to_numpy().mean())
    city = summary.feature("city")
    fcity = profile.feature("city")
    assert city is not None
    assert fcity is not None
    assert fcity.categorical
    assert city.unseen_values == ["Berlin"]
    assert city.unseen_counts is not None
    assert city.out_of_domain == city.unseen_counts[0]
    assert sum(city.category_counts or []) + city.out_of_domain == 800
    children = summary.feature("children")
    assert children is not None
    assert children.unseen_values is not None
    assert sorted(children.unseen_values) == ["4", "5"]
    assert children.out_of_domain == sum(children.unseen_counts or [])
    amount = summary.feature("amount")
    assert amount is not None
    assert amount.negative > 0
    assert amount.below_min > 0
    missing = [f.name for f in summary.features if not f.present]
    assert missing == ["user_id", "seen", "empty"]
    # The raw values stay available to sample-based tests.
    bins_x = next(b for b in bins(profile).features if b.name == "x")
    values, mismatches = numeric_values(current.column("x"), bins_x)
    assert values.size == 800
    assert mismatches == 0


def test_summary_of_the_reference_reproduces_its_counts() -> None:
    reference = _reference(2000)
    profile = build_profile(reference)
    summary = summarize(reference, bins(profile))
    for f in profile.features:
        counts = summary.feature(f.name)
        assert counts is not None
        assert counts.missing == f.missing, f.name
        if f.numeric is not None and f.numeric.counts is not None:
            assert counts.counts == f.numeric.counts, f.name
            assert counts.below_min == counts.above_max == 0
        if f.categorical is not None:
            assert counts.category_counts == [float(c) for c in f.categorical.counts], f.name
            assert counts.unseen_values == []
            assert counts.out_of_domain == 0


def test_text_in_numeric_column_is_a_type_mismatch() -> None:
    profile = build_profile(pa.table({"x": [1.0, 2.0, 3.0, 4.0]}))
    summary = profile_batch(pa.table({"x": ["1.5", "abc", None, " 2e0 ", "x"]}), profile)
    x = summary.feature("x")
    assert x is not None
    assert (x.type_mismatch, x.missing, x.count) == (2, 1, 5)
    assert x.min == 1.5
    assert x.max == 2.0
