"""Is a window's performance degraded against the reference? (pure: scipy, no I/O)

Accuracy-like metrics only, for now: a one-sided two-proportion z-test of
``H0: p_window >= p_reference - tolerance`` against ``H1: p_window < p_reference - tolerance``,
with the unpooled standard error (the null is a shifted difference, not equality). The window
is degraded when the p-value is below ``alpha``: it fell short of the reference by more than
the tolerance, with statistical support — a small window that looks worse is not enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm


@dataclass(frozen=True)
class Decision:
    degraded: bool | None
    metric: str
    p_value: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "degraded": self.degraded,
            "metric": self.metric,
            "p_value": self.p_value,
            "reason": self.reason,
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
    if se == 0.0:
        # Both proportions are 0 or 1: the gap is certain either way.
        return Decision(gap > 0, metric, 0.0 if gap > 0 else 1.0)
    p_value = float(norm.sf(gap / se))
    return Decision(p_value < alpha, metric, p_value)
