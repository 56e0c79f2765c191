"""The examples in the docstrings of ``drift_backend.stats`` run as tests, one per docstring.

Collected here rather than by ``pytest --doctest-modules``, which would also import every
module under ``tests/`` (some are scripts for other virtualenvs) and the whole backend.
Run only these: ``uv run pytest tests/stats/test_doctests.py``.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from typing import Any

import drift_backend.stats
import pytest
from drift_backend.stats import CATEGORICAL_TESTS, NUMERICAL_TESTS
from drift_backend.stats import profile as profile_tests
from drift_backend.stats.correction import adjust, cohens_d, cramers_v
from drift_backend.stats.multivariate import mmd, prediction_drift

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found: list[doctest.DocTest] = []
    package = drift_backend.stats
    for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        found += [t for t in finder.find(module) if t.examples]
    return sorted(found, key=lambda t: t.name)


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest) -> None:
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=out.write, clear_globs=True)
    if result.failed:
        pytest.fail(out.getvalue(), pytrace=False)


def test_every_public_test_has_an_example() -> None:
    """Each test of the catalog (both registries, the profile tests, MMD, prediction drift,
    the corrections and effect sizes) shows a seeded example in its docstring."""
    profile_names = ["psi_counts", "jensen_shannon_counts", "hellinger_counts", "kl_div_counts"]
    profile_names += ["linf_counts", "ks_from_quantiles", "ks_between_quantiles"]
    functions: list[Any] = [*NUMERICAL_TESTS.values(), *CATEGORICAL_TESTS.values()]
    functions += [getattr(profile_tests, name) for name in profile_names]
    functions += [mmd, prediction_drift, adjust, cohens_d, cramers_v]
    with_examples = {t.name for t in DOCTESTS}
    names = [f"{fn.__module__}.{fn.__qualname__}" for fn in functions]
    missing = [name for name in names if name not in with_examples]
    assert not missing, f"no docstring example: {missing}"
