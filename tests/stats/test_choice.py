"""Automatic test choice after Evidently's default rules."""

from __future__ import annotations

import pytest
from drift_backend.stats import CATEGORICAL_TESTS, NUMERICAL_TESTS, choose_for_data, choose_test


@pytest.mark.parametrize(
    ("kind", "n", "u", "expected"),
    [
        ("numerical", 1000, 6, ("ks", 0.05, "numerical")),
        ("numerical", 1001, 6, ("wasserstein", 0.1, "numerical")),
        ("numerical", 500, 5, ("chi_square", 0.05, "categorical")),
        ("numerical", 5000, 3, ("jensen_shannon", 0.1, "categorical")),
        ("numerical", 500, 2, ("z_test", 0.05, "categorical")),
        ("categorical", 500, 40, ("chi_square", 0.05, "categorical")),
        ("categorical", 5000, 40, ("jensen_shannon", 0.1, "categorical")),
        ("categorical", 10, 2, ("z_test", 0.05, "categorical")),
        ("categorical", 2000, 1, ("jensen_shannon", 0.1, "categorical")),
    ],
)
def test_choose_test_rules(kind: str, n: int, u: int, expected: tuple[str, float, str]) -> None:
    choice = choose_test(kind, n, u)  # type: ignore[arg-type]
    assert tuple(choice) == expected
    registry = NUMERICAL_TESTS if choice.kind == "numerical" else CATEGORICAL_TESTS
    assert choice.name in registry


def test_choose_for_data_counts_after_dropping_missing() -> None:
    ref = [1.0, 2.0, 3.0, float("nan"), float("inf")]
    assert choose_for_data(ref, [4.0, 5.0, 6.0], "numerical").name == "ks"
    assert choose_for_data(ref, [1.0, None], "numerical").name == "chi_square"
    assert choose_for_data(["a", "b"] * 600, ["a"], "categorical").name == "jensen_shannon"
    with pytest.raises(ValueError, match="kind"):
        choose_test("text", 10, 10)  # type: ignore[arg-type]
