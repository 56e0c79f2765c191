"""Is a window's performance degraded against the reference? (pure: numpy/scipy, no I/O)

Two tests, both one-sided and both with a tolerance, so that a window is degraded only when
it fell short of the reference by more than the tolerance *with statistical support* — a
small window that merely looks worse is not enough:

- **Accuracy-like metrics** (accuracy; precision and recall of a binary model's positive
  class), proportions of counts the confusion matrix holds: a two-proportion z-test of
  ``H0: p_window >= p_reference - tolerance`` with the unpooled standard error (the null is
  a shifted difference, not equality).
- **Regression errors** (MAE, RMSE), means of per-row values: the windows keep sums, not
  rows, so there is nothing to resample — but the bootstrap standard error of a mean is
  known in closed form, ``sqrt(mean(x²) - mean(x)²) / sqrt(n)`` (the plug-in standard
  deviation; what resampling converges to), and needs only the sums of ``x`` and ``x²``.
  The test is on ``H0: mean_window <= (1 + tolerance) * mean_reference`` (a relative
  tolerance: errors have units), with the normal bootstrap interval of the difference: MAE
  from the sums of ``|e|`` and ``e²``, RMSE on the squared scale from ``e²`` and ``e⁴``.

The window is degraded when the p-value is below ``alpha`` — equivalently, the one-sided
``1 - alpha`` interval of the shortfall lies wholly beyond the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scipy.stats import norm

from drift_backend.performance.metrics import class_order, confusion

#: Regression windows (and references) smaller than this get no decision: the normal
#: interval of a mean of skewed errors needs some rows to be honest.
MIN_REGRESSION_ROWS = 20


@dataclass(frozen=True)
class Decision:
    degraded: bool | None
    metric: str
    p_value: float | None = None
    reason: str | None = None
    #: The window's metric, the reference's, and the level the window must be worse than
    #: (beyond the tolerance) to be degraded.
    value: float | None = None
    reference: float | None = None
    threshold: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "degraded": self.degraded,
            "metric": self.metric,
            "p_value": self.p_value,
            "reason": self.reason,
            "value": self.value,
            "reference": self.reference,
            "threshold": self.threshold,
        }


def below_reference(
    successes: int,
    n: int,
    reference_successes: int,
    reference_n: int,
    tolerance: float,
    alpha: float,
    metric: str = "accuracy",
) -> Decision:
    """The decision for ``successes`` of ``n`` in the window against the reference's."""
    if n == 0 or reference_n == 0:
        return Decision(None, metric, reason="no labelled predictions in the window or reference")
    p, q = successes / n, reference_successes / reference_n
    se = math.sqrt(p * (1 - p) / n + q * (1 - q) / reference_n)
    gap = (q - tolerance) - p  # > 0 when the window is below the tolerated level
    # se 0: both proportions are 0 or 1, so the gap is certain either way.
    p_value = float(norm.sf(gap / se)) if se else (0.0 if gap > 0 else 1.0)
    return Decision(p_value < alpha, metric, p_value, None, p, q, q - tolerance)


@dataclass(frozen=True)
class Moments:
    """``n`` values' sum and sum of squares: a mean and its bootstrap standard error."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def bootstrap_se(self) -> float:
        """The bootstrap standard error of the mean (closed form: plug-in sd / sqrt(n))."""
        variance = max(self.squares / self.n - self.mean**2, 0.0)
        return math.sqrt(variance / self.n)


def mean_above_reference(
    window: Moments,
    reference: Moments,
    tolerance: float,
    alpha: float,
    metric: str,
    squared: bool = False,
) -> Decision:
    """Is the window's mean above ``(1 + tolerance)`` times the reference's, with support?
    ``squared``: the means are of e² and the metric is their square root (RMSE), so the
    means are compared with ``(1 + tolerance)²``."""
    n_min = min(window.n, reference.n)
    if n_min < MIN_REGRESSION_ROWS:
        why = f"fewer than {MIN_REGRESSION_ROWS} labelled rows in the window or reference"
        return Decision(None, metric, reason=why)
    factor = (1.0 + tolerance) ** (2 if squared else 1)
    show = math.sqrt if squared else float
    excess = window.mean - factor * reference.mean  # > 0 when the window is worse
    se = math.sqrt(window.bootstrap_se**2 + (factor * reference.bootstrap_se) ** 2)
    p_value = float(norm.sf(excess / se)) if se else (0.0 if excess > 0 else 1.0)
    return Decision(
        p_value < alpha,
        metric,
        p_value,
        None,
        show(window.mean),
        show(reference.mean),
        show(factor * reference.mean),
    )


# --- a window's decisions ------------------------------------------------------------------------

#: The metrics a decision is made on, the first of each task the window's main ``decision``.
CLASSIFICATION_DECISIONS = ("accuracy", "precision", "recall")
REGRESSION_DECISIONS = ("mae", "rmse")
DECISION_METRICS = CLASSIFICATION_DECISIONS + REGRESSION_DECISIONS


@dataclass(frozen=True)
class Tolerances:
    tolerance: float  # absolute, for proportions
    regression_tolerance: float  # relative, for mean errors
    alpha: float


def _proportions(stats: Mapping[str, Any], classes: list[str]) -> dict[str, tuple[int, int]]:
    """(successes, n) of each accuracy-like metric the window's confusion matrix has."""
    labels, matrix = confusion(stats)
    out = {"accuracy": (int(matrix.trace()), int(matrix.sum()))}
    known = class_order(set(classes) | set(labels))
    if len(known) == 2:
        positive = known[-1]
        if positive in labels:
            i = labels.index(positive)
            tp = int(matrix[i, i])
            out["precision"] = (tp, int(matrix[:, i].sum()))
            out["recall"] = (tp, int(matrix[i, :].sum()))
        else:
            out["precision"] = out["recall"] = (0, 0)
    return out


def _regression(stats: Mapping[str, Any]) -> dict[str, Moments | None]:
    n = int(stats.get("n", 0))
    mae = Moments(n, float(stats.get("a", 0.0)), float(stats.get("s", 0.0))) if n else None
    # e⁴ sums were added to the windows later: hours stored before lack them.
    mse = Moments(n, float(stats.get("s", 0.0)), float(stats["q"])) if n and "q" in stats else None
    return {"mae": mae, "rmse": mse}


def window_decisions(
    regression: bool,
    classes: list[str],
    stats: Mapping[str, Any],
    reference: Mapping[str, Any] | None,
    complete: bool,
    tolerances: Tolerances,
) -> dict[str, Decision]:
    """Every decision of a window (its main metric first), from its stats and the
    reference's (both as :mod:`.windows` keeps them)."""
    names = REGRESSION_DECISIONS if regression else CLASSIFICATION_DECISIONS
    why = None
    if reference is None:
        why = "the model has no labelled reference"
    elif not complete:
        why = "incomplete window: coverage too low"
    if why is not None:
        return {name: Decision(None, name, reason=why) for name in names[:1]}
    assert reference is not None
    out: dict[str, Decision] = {}
    if regression:
        ours, theirs = _regression(stats), _regression(reference)
        for name in names:
            mine, ref = ours[name], theirs[name]
            if mine is None or ref is None:
                out[name] = Decision(None, name, reason="no sums of e⁴ stored (older data)")
                continue
            out[name] = mean_above_reference(
                mine,
                ref,
                tolerances.regression_tolerance,
                tolerances.alpha,
                name,
                squared=name == "rmse",
            )
        return out
    ours_p, theirs_p = _proportions(stats, classes), _proportions(reference, classes)
    for name in names:
        if name in ours_p and name in theirs_p:
            out[name] = below_reference(
                *ours_p[name], *theirs_p[name], tolerances.tolerance, tolerances.alpha, name
            )
    return out
