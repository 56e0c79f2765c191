"""SageMaker statistics.json / constraints.json import, export and round trip."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines import (
    BatchError,
    build_profile,
    export_constraints,
    export_statistics,
    import_sagemaker,
)
from drift_backend.baselines.kll import sketch_quantiles


def _table() -> pa.Table:
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(50.0, 10.0, n)
    x[:40] = np.nan
    return pa.table(
        {
            "x": x,
            "count": rng.poisson(30, n),
            "city": rng.choice(["Paris", "Oslo", "Rome", "Lima"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def test_round_trip_keeps_what_the_format_holds() -> None:
    profile = build_profile(_table())
    stats = json.loads(json.dumps(export_statistics(profile)))
    cons = json.loads(json.dumps(export_constraints(profile)))
    back = import_sagemaker(json.dumps(stats).encode(), json.dumps(cons).encode())
    assert back.row_count == profile.row_count
    assert back.monitoring_config == profile.monitoring_config
    for before in profile.features:
        after = back.feature(before.name)
        assert after is not None
        assert (after.count, after.missing) == (before.count, before.missing)
        assert after.completeness == pytest.approx(before.completeness)
        assert after.constraints.completeness == pytest.approx(before.constraints.completeness)
        assert after.constraints.is_non_negative == before.constraints.is_non_negative
        assert after.constraints.domains == before.constraints.domains
        if before.numeric is not None and before.numeric.quantiles is not None:
            num, got = before.numeric, after.numeric
            assert got is not None
            assert got.quantiles is not None
            for key in ("min", "max", "mean", "std", "sum"):
                assert getattr(got, key) == pytest.approx(getattr(num, key)), key
            assert num.std is not None
            np.testing.assert_allclose(
                np.asarray(got.quantiles), np.asarray(num.quantiles), rtol=1e-12
            )
            assert got.counts is not None
            assert sum(got.counts) == before.count - before.missing
        if before.inferred_type == "String":
            assert after.categorical == before.categorical
            assert after.distinct_count == before.distinct_count
        assert after.has_distribution


def test_kll_levels_weigh_two_to_the_level() -> None:
    # 1 at level 0 (weight 1), 2 at level 1 (weight 2), 3 at level 2 (weight 4): the sample
    # it stands for is [1, 2, 2, 3, 3, 3, 3].
    sample = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    q = sketch_quantiles([[1.0], [2.0], [3.0]], 11, None, None)
    assert q is not None
    np.testing.assert_allclose(q, np.quantile(sample, np.linspace(0, 1, 11)))
    rng = np.random.default_rng(3)
    levels = [sorted(rng.normal(size=8).tolist()) for _ in range(4)]
    expanded = np.concatenate([np.repeat(lv, 2**i) for i, lv in enumerate(levels)])
    got = sketch_quantiles(levels, 101, None, None)
    assert got is not None
    np.testing.assert_allclose(got, np.quantile(expanded, np.linspace(0, 1, 101)))


def test_flare_style_nulls_and_nans_are_tolerated() -> None:
    stats = (
        '{"dataset": {"item_count": 4}, "version": 0, "features": ['
        '{"name": "a", "inferred_type": "Fractional", "numerical_statistics": {"common": '
        '{"num_present": 0, "num_missing": 4}, "mean": NaN, "sum": 0.0, "std_dev": NaN, '
        '"min": NaN, "max": NaN, "distribution": null}, "string_statistics": null},'
        '{"name": "s", "inferred_type": "String", "numerical_statistics": null, '
        '"string_statistics": {"common": {"num_present": 3, "num_missing": 1}, '
        '"distinct_count": 2, "distribution": null}},'
        '{"name": "u", "inferred_type": "Unknown"}]}'
    )
    cons = {
        "features": [
            {
                "name": "s",
                "inferred_type": "String",
                "completeness": 0.75,
                "string_constraints": {"domains": ["x", "y"]},
                "monitoringConfigOverrides": None,
            },
        ],
        "monitoring_config": {
            "distribution_constraints": {
                "perform_comparison": "Disabled",
                "comparison_method": "linf_robust",
            },
            "evaluate_constraints": "Enabled",
            "datatype_check_threshold": 0.2,
        },
    }
    profile = import_sagemaker(stats, json.dumps(cons))
    a, s, u = profile.features
    assert a.numeric is not None
    assert a.numeric.mean is None
    assert not a.has_distribution
    assert s.kind == "categorical"
    assert not s.has_distribution
    assert s.constraints.domains == ["x", "y"]
    assert s.completeness == 0.75
    assert u.kind == "unknown"
    dc = profile.monitoring_config.distribution_constraints
    assert (dc.perform_comparison, dc.comparison_method) == (False, "Robust")
    assert profile.monitoring_config.datatype_check_threshold == 0.2
    json.dumps(profile.to_document(), allow_nan=False)


@pytest.mark.parametrize(
    ("stats", "cons", "field"),
    [
        (b"{", None, "statistics"),
        (b"[]", None, "statistics"),
        (b'{"features": [{"inferred_type": "String"}]}', None, "statistics"),
        (b'{"features": [{"name": "a", "inferred_type": "Weird"}]}', None, "statistics"),
        (
            b'{"features": []}',
            b'{"features": [], "monitoring_config": {"distribution_constraints": '
            b'{"comparison_method": "Fancy"}}}',
            "constraints",
        ),
    ],
)
def test_malformed_files_are_422(stats: bytes, cons: bytes | None, field: str) -> None:
    with pytest.raises(BatchError) as err:
        import_sagemaker(stats, cons)
    assert (err.value.status, err.value.field) == (422, field)


def test_histogram_from_quantiles_keeps_a_spike_at_the_minimum() -> None:
    from drift_backend.baselines.sagemaker import _histogram

    # 30% zeros, the rest spread over (0, 1]: the first bin holds the zeros and its share.
    quantiles = np.quantile(
        np.concatenate([np.zeros(3000), np.linspace(0.01, 1.0, 7000)]), np.linspace(0, 1, 101)
    ).tolist()
    edges, counts = _histogram(None, quantiles, 10_000)
    assert edges is not None
    assert counts is not None
    assert sum(counts) == pytest.approx(10_000)
    assert counts[0] == counts[-1] == 0.0  # nothing below the min or above the max
    assert counts[1] >= 3000
