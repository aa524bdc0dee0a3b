"""Uncertainty and significance: bootstrap intervals and paired comparisons of two classifiers.

Intervals are percentile bootstraps over resampled item indices, so any metric works, paired
ones included, and a resample where a metric is undefined (NaN, e.g. kappa of a constant
prediction) is left out rather than failing the whole interval (which ``scipy.stats.bootstrap``
does). Tests of significance use scipy. Randomness is a parameter (``random_state``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Estimate", "PairedTest", "bootstrap_interval", "mcnemar", "paired_bootstrap"]

IndexStatistic = Callable[[np.ndarray], float]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric's value on the data and its bootstrap confidence interval."""

    value: float
    low: float
    high: float
    confidence: float = 0.95

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Classifier B minus classifier A on the same items, with a two-sided p-value."""

    metric: str
    test: str
    value_a: float
    value_b: float
    difference: float
    low: float
    high: float
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def bootstrap_interval(
    statistic: IndexStatistic,
    n_items: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = None,
) -> Estimate:
    """Percentile bootstrap of ``statistic(indices)`` over ``n_items`` items resampled with replacement.

    Examples
    --------
    >>> import numpy as np
    >>> correct = np.array([1, 1, 0, 1, 0, 1, 1, 1])
    >>> est = bootstrap_interval(lambda i: correct[i].mean(), len(correct), random_state=0)
    >>> round(est.value, 3), est.low <= est.value <= est.high
    (0.75, True)
    """
    value = float(statistic(np.arange(n_items)))
    if n_items < 2 or math.isnan(value):
        return Estimate(value, float("nan"), float("nan"), confidence)
    rng = np.random.default_rng(random_state)
    draws = np.asarray(
        [statistic(rng.integers(0, n_items, n_items)) for _ in range(n_resamples)], dtype=float
    )
    draws = draws[~np.isnan(draws)]
    if not draws.size:
        return Estimate(value, float("nan"), float("nan"), confidence)
    alpha = 1 - confidence
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(low), float(high), confidence)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float, int, int]:
    """McNemar's test on paired correctness: (statistic, p-value, only-A-right, only-B-right).

    Exact (binomial) when fewer than 25 items disagree, else chi-square with continuity
    correction.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        return 0.0, 1.0, 0, 0
    if discordant < 25:
        p_value = stats.binomtest(min(only_a, only_b), discordant, 0.5).pvalue
        return float(min(only_a, only_b)), float(p_value), only_a, only_b
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    return float(statistic), float(stats.chi2.sf(statistic, df=1)), only_a, only_b


def paired_bootstrap(
    metric: str,
    statistic_a: IndexStatistic,
    statistic_b: IndexStatistic,
    n_items: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = None,
) -> PairedTest:
    """Difference B - A of a metric on the same resampled items.

    The p-value is the share of resampled differences at least as far from the observed one as
    the observed one is from zero (the bootstrap distribution shifted to the null).
    """
    rng = np.random.default_rng(random_state)
    indices = np.arange(n_items)
    value_a, value_b = float(statistic_a(indices)), float(statistic_b(indices))
    observed = value_b - value_a
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        sample = rng.integers(0, n_items, n_items)
        diffs[r] = statistic_b(sample) - statistic_a(sample)
    diffs = diffs[~np.isnan(diffs)]
    alpha = 1 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2]) if diffs.size else (math.nan, math.nan)
    extreme = np.sum(np.abs(diffs - observed) >= abs(observed)) if diffs.size else 0
    p_value = float((extreme + 1) / (diffs.size + 1))
    return PairedTest(
        metric, "paired_bootstrap", value_a, value_b, observed, float(low), float(high), min(1.0, p_value)
    )
