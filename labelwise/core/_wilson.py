"""The Wilson score interval: a proportion's interval that stays honest at 0, 1 and small counts."""

from __future__ import annotations

__all__ = ["wilson_interval"]


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float] | None:
    """``(low, high)`` of ``successes / trials``; ``None`` without trials."""
    if not trials:
        return None
    from scipy.stats import binomtest  # scipy comes with scikit-learn; imported when first needed

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)
