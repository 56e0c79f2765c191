"""The check engine on its own (pure): calibration against a stored profile, power, and the
decision rules (correction, effect-size floor, dataset share)."""

from __future__ import annotations

import bson
import numpy as np
import pyarrow as pa
import pytest
from drift_backend.baselines.profile import build_profile
from drift_backend.checks.config import DriftConfig
from drift_backend.checks.engine import (
    FOLDED,
    HISTOGRAM_CATEGORIES,
    HISTOGRAM_LABEL_CHARS,
    run_check,
)
from scipy import stats as sps

RUNS = 200
ALPHA = 0.05


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pa.Table:
    return pa.table(
        {f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(8)}
        | {"c": rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.2, 0.1])}
    )


def _binomial_upper(p: float, n: int) -> float:
    """99.9% upper bound of a binomial share: the tolerance of a false-alarm rate."""
    return float(sps.binom.ppf(0.9995, n, p)) / n


@pytest.mark.parametrize("correction", ["none", "bh"])
def test_false_alarm_rate_against_a_profile(correction: str) -> None:
    rng = np.random.default_rng(2026)
    config = DriftConfig.model_validate({"correction": correction, "drift_share": 1 / 9})
    feature_alarms = 0
    any_alarm = 0
    for _ in range(RUNS):
        # A fresh reference each run: a test's level is an average over both samples.
        profile = build_profile(_table(rng, 600))
        report = run_check(profile, _table(rng, 400), config)
        assert {f.test for f in report.features} == {"ks", "chi_square"}
        drifted = len(report.drifted_features)
        feature_alarms += drifted
        any_alarm += drifted > 0
    per_feature = feature_alarms / (RUNS * 9)
    assert per_feature <= _binomial_upper(ALPHA, RUNS * 9)
    if correction == "bh":
        # Family-wise: no more than alpha of the runs raise any alarm.
        assert any_alarm / RUNS <= _binomial_upper(ALPHA, RUNS)
    else:
        # Uncorrected, nine tests per run alarm far more often: why correction is the default.
        assert any_alarm / RUNS > 0.2


def test_injected_drift_is_found_in_the_drifted_feature_only() -> None:
    rng = np.random.default_rng(7)
    profile = build_profile(_table(rng, 800))
    found = false_alarms = 0
    for _ in range(20):
        report = run_check(profile, _table(rng, 800, shift=0.3), DriftConfig())
        found += "x0" in report.drifted_features
        false_alarms += len(set(report.drifted_features) - {"x0"})
    assert found >= 19
    assert false_alarms <= 4  # of 160 drift-free feature tests: about alpha, not more


def test_effect_size_floor_silences_trivial_shifts_on_large_samples() -> None:
    rng = np.random.default_rng(8)
    profile = build_profile(_table(rng, 200_000))
    current = _table(rng, 200_000, shift=0.03)  # significant at this size, but trivial
    plain = run_check(profile, current, DriftConfig(numerical_test="ks"))
    floored = run_check(profile, current, DriftConfig(numerical_test="ks", effect_size_floor=0.1))
    assert "x0" in plain.drifted_features
    assert "x0" not in floored.drifted_features
    x0 = next(f for f in floored.features if f.feature == "x0")
    assert x0.p_value_adjusted is not None
    assert x0.p_value_adjusted < ALPHA
    assert x0.effect_size is not None
    assert x0.effect_size < 0.1


def test_dataset_drift_follows_the_configured_share() -> None:
    rng = np.random.default_rng(9)
    profile = build_profile(_table(rng, 800))
    current = _table(rng, 800, shift=1.0)
    assert run_check(profile, current, DriftConfig(drift_share=0.5)).dataset_drift is False
    assert run_check(profile, current, DriftConfig(drift_share=0.1)).dataset_drift is True


def test_per_feature_overrides_win() -> None:
    rng = np.random.default_rng(10)
    profile = build_profile(_table(rng, 800))
    config = DriftConfig.model_validate(
        {"features": {"x1": {"test": "psi", "threshold": 0.5}, "c": {"test": "tvd"}}}
    )
    report = run_check(profile, _table(rng, 800), config)
    by_name = {f.feature: f for f in report.features}
    assert by_name["x1"].test == "psi"
    assert by_name["x1"].threshold == 0.5
    assert by_name["c"].test == "tvd"
    assert by_name["x2"].test == "ks"


def test_unknown_tests_are_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="unknown test"):
        DriftConfig(numerical_test="magic")
    with pytest.raises(ValueError, match="unknown test"):
        DriftConfig.model_validate({"features": {"x": {"test": "nope"}}})


def test_every_kind_of_column_is_tested_or_explained() -> None:
    import datetime as dt

    rng = np.random.default_rng(12)
    start = dt.datetime(2026, 1, 1)

    def hours(offset: int, n: int) -> pa.Array:
        return pa.array(
            [start + dt.timedelta(hours=int(h) + offset) for h in rng.integers(0, 5000, n)]
        )

    reference = pa.table(
        {
            "when": hours(0, 3000),
            "flag": pa.array(rng.random(3000) < 0.3),
            "code": pa.array(rng.integers(0, 4, 3000)),
            "text": pa.array(rng.choice(["a", "b"], 3000)),
            "empty": pa.array([None] * 3000, pa.float64()),
        }
    )
    current = pa.table(
        {
            "when": hours(60 * 24, 1000),  # two months later
            "flag": pa.array(rng.random(1000) < 0.6),
            "code": pa.array(["x"] * 1000),  # text where the baseline had numbers
            "text": pa.array([None] * 1000, pa.string()),
            "empty": pa.array([None] * 1000, pa.float64()),
        }
    )
    report = run_check(build_profile(reference), current, DriftConfig())
    by_name = {f.feature: f for f in report.features}
    assert by_name["when"].kind == "datetime"
    assert by_name["when"].drifted is True
    assert by_name["flag"].kind == "boolean"
    assert by_name["flag"].drifted is True
    assert "baseline's type" in (by_name["code"].untestable or "")
    assert "all missing" in (by_name["text"].untestable or "")
    assert "no distribution" in (by_name["empty"].untestable or "")
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in report.violations}
    assert ("code", "data_type_check") in kinds


def _correlated(seed: int, n: int, rho: float) -> pa.Table:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    return pa.table({"a": a, "b": b})


def test_multivariate_mmd_sees_what_per_feature_tests_cannot() -> None:
    profile = build_profile(_correlated(13, 3000, rho=0.0))
    assert profile.sample is not None
    assert len(profile.sample.rows) == 1000
    current = _correlated(14, 3000, rho=0.9)  # same margins, features now move together
    report = run_check(profile, current, DriftConfig(multivariate=True))
    assert report.drifted_features == []  # each feature alone looks the same
    assert report.multivariate is not None
    assert report.multivariate.drifted is True
    assert report.multivariate.p_value == pytest.approx(1 / 201)
    clean = run_check(profile, _correlated(15, 3000, rho=0.0), DriftConfig(multivariate=True))
    assert clean.multivariate is not None
    assert clean.multivariate.drifted is False


def test_multivariate_is_opt_in_and_explained_when_impossible() -> None:
    from drift_backend.baselines.summary import bins, summarize
    from drift_backend.checks.reduce import decode, encode, reduce_batch

    profile = build_profile(_correlated(16, 2000, rho=0.0))
    current = _correlated(17, 2000, rho=0.9)
    assert run_check(profile, current, DriftConfig()).multivariate is None
    reduced = decode(encode(reduce_batch(current, profile)))
    assert reduced.sample is not None
    via_reduced = run_check(profile, reduced, DriftConfig(multivariate=True))
    assert via_reduced.multivariate is not None
    assert via_reduced.multivariate.drifted is True
    summary = summarize(current, bins(profile))
    counted = run_check(profile, summary, DriftConfig(multivariate=True))
    assert counted.multivariate is not None
    assert "summary mode" in (counted.multivariate.untestable or "")


def _with_prediction(rng: np.random.Generator, n: int, p: list[float]) -> pa.Table:
    table = _table(rng, n)
    return table.append_column("predicted", pa.array(rng.choice([0, 1, 2], size=n, p=p)))


def test_prediction_drift_is_reported_apart_from_the_features() -> None:
    rng = np.random.default_rng(11)
    profile = build_profile(_with_prediction(rng, 3000, [0.6, 0.3, 0.1]))
    config = DriftConfig(prediction="predicted")
    shifted = run_check(profile, _with_prediction(rng, 3000, [0.4, 0.3, 0.3]), config)
    assert shifted.prediction is not None
    assert shifted.prediction.feature == "predicted"
    assert shifted.prediction.kind == "categorical"
    assert shifted.prediction.drifted is True
    # Not one of the features: outside their correction, share and dataset decision.
    assert "predicted" not in {f.feature for f in shifted.features}
    assert "predicted" not in shifted.drifted_features
    assert shifted.n_tested == 9
    assert shifted.dataset_drift is False
    steady = run_check(profile, _with_prediction(rng, 3000, [0.6, 0.3, 0.1]), config)
    assert steady.prediction is not None
    assert steady.prediction.drifted is False
    # Without the setting the column is just another feature.
    plain = run_check(profile, _with_prediction(rng, 3000, [0.4, 0.3, 0.3]), DriftConfig())
    assert plain.prediction is None
    assert "predicted" in plain.drifted_features


def test_prediction_drift_is_calibrated_uncorrected() -> None:
    rng = np.random.default_rng(12)
    config = DriftConfig(prediction="predicted", categorical_test="chi_square")
    alarms = 0
    for _ in range(RUNS):
        profile = build_profile(_with_prediction(rng, 500, [0.5, 0.3, 0.2]))
        report = run_check(profile, _with_prediction(rng, 500, [0.5, 0.3, 0.2]), config)
        assert report.prediction is not None
        assert report.prediction.test == "chi_square"
        assert report.prediction.p_value_adjusted == report.prediction.p_value
        alarms += report.prediction.drifted
    assert 0 < alarms / RUNS <= _binomial_upper(ALPHA, RUNS)


def test_prediction_column_missing_from_the_baseline_is_untestable() -> None:
    rng = np.random.default_rng(13)
    profile = build_profile(_table(rng, 500))
    report = run_check(profile, _table(rng, 500), DriftConfig(prediction="predicted"))
    assert report.prediction is not None
    assert report.prediction.test is None
    assert report.prediction.untestable == "the baseline has no such column"


def test_alpha_sets_the_level_of_p_value_tests() -> None:
    rng = np.random.default_rng(17)
    profile = build_profile(_table(rng, 500))
    current = _table(rng, 500, shift=0.05)
    p = run_check(profile, current, DriftConfig(correction="none")).features[0].p_value
    assert p is not None
    assert 0 < p < 1
    below, above = p / 2, (1 + p) / 2  # levels on either side of this p-value
    strict = run_check(profile, current, DriftConfig(alpha=below, correction="none"))
    loose = run_check(profile, current, DriftConfig(alpha=above, correction="none"))
    assert strict.features[0].test == loose.features[0].test == "ks"
    assert (strict.features[0].threshold, strict.features[0].drifted) == (below, False)
    assert (loose.features[0].threshold, loose.features[0].drifted) == (above, True)
    # A feature's own threshold wins over alpha.
    own = DriftConfig.model_validate(
        {"alpha": above, "correction": "none", "features": {"x0": {"threshold": below}}}
    )
    assert run_check(profile, current, own).features[0].drifted is False


def test_categorical_histograms_fold_the_rare_categories_and_keep_every_count() -> None:
    rng = np.random.default_rng(5)
    values = [f"v{i:03d}" for i in range(300)]
    weights = np.linspace(1.0, 0.01, 300)
    weights /= weights.sum()
    reference = pa.table({"c": rng.choice(values, 20_000, p=weights).tolist()})
    current = pa.table({"c": rng.choice(values, 20_000, p=weights).tolist() + ["new"] * 50})
    report = run_check(build_profile(reference), current, DriftConfig())
    histogram = report.features[0].histogram
    assert histogram is not None
    assert histogram.categories is not None
    assert len(histogram.categories) == HISTOGRAM_CATEGORIES
    assert histogram.categories[-1] == FOLDED
    assert histogram.folded == len(set(reference.column("c").to_pylist()) | {"new"}) - (
        HISTOGRAM_CATEGORIES - 1
    )
    # Nothing is lost: the folded cell holds the rest of both samples.
    assert sum(histogram.reference) == 20_000
    assert sum(histogram.current) == 20_050
    # The most frequent category is shown, the rarest ones are folded.
    assert "v000" in histogram.categories
    assert "v299" not in histogram.categories


def test_a_report_of_the_widest_categorical_batch_fits_one_document() -> None:
    """1,000 columns (``DRIFT_MAX_BATCH_COLUMNS``) of 300 distinct 200-character values:
    unfolded, the histograms alone would be over 60 MB; MongoDB stores at most 16 MB."""
    rng = np.random.default_rng(6)
    labels = [f"{i:03d}" + "x" * 197 for i in range(300)]
    ref_column = pa.array(rng.choice(labels, 600).tolist())
    cur_column = pa.array(rng.choice(labels, 600).tolist())
    names = [f"c{i}" for i in range(1000)]
    reference = pa.table({n: ref_column for n in names})
    current = pa.table({n: cur_column for n in names})
    report = run_check(build_profile(reference), current, DriftConfig())
    assert report.n_tested == 1000
    size = len(bson.encode(report.model_dump(mode="json")))
    assert size < 16 * 1024 * 1024
    labels_shown = report.features[0].histogram.categories  # type: ignore[union-attr]
    assert labels_shown is not None
    assert all(len(label) <= HISTOGRAM_LABEL_CHARS for label in labels_shown)
