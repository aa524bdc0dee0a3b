"""Comparing two classifiers on the same items: which is better on which metric, and how sure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._evaluate import METRICS, ORDINAL_METRICS, Metric, higher_is_better
from ._stats import PairedTest, mcnemar, paired_bootstrap

__all__ = ["compare_predictions", "comparison_records", "verdict"]


def compare_predictions(
    y_true: Sequence[str],
    pred_a: Sequence[str | None],
    pred_b: Sequence[str | None],
    *,
    labels: Sequence[str],
    ordinal: bool = False,
    n_resamples: int = 1000,
    random_state: int | None = 0,
) -> list[PairedTest]:
    """A paired test per metric: McNemar for accuracy, a paired bootstrap for the others.

    Every test resamples the same items for both classifiers, so differences in the items
    drawn do not pass for differences between the classifiers.
    """
    true = np.asarray(list(y_true), dtype=object)
    a = np.asarray(list(pred_a), dtype=object)
    b = np.asarray(list(pred_b), dtype=object)
    if not (len(true) == len(a) == len(b)):
        raise ValueError("y_true, pred_a and pred_b must have the same length")
    tests = []
    chosen = {**METRICS, **(ORDINAL_METRICS if ordinal else {})}
    for name, (metric, _, _) in chosen.items():

        def on_a(i: np.ndarray, metric: Metric = metric) -> float:
            return metric(true[i], a[i], labels=labels)

        def on_b(i: np.ndarray, metric: Metric = metric) -> float:
            return metric(true[i], b[i], labels=labels)

        test = paired_bootstrap(
            name,
            on_a,
            on_b,
            len(true),
            n_resamples=n_resamples,
            random_state=random_state,
        )
        if name == "accuracy":
            _, p_value, _, _ = mcnemar(
                np.asarray([x == y for x, y in zip(a, true, strict=True)]),
                np.asarray([x == y for x, y in zip(b, true, strict=True)]),
            )
            test = PairedTest(
                name, "mcnemar", test.value_a, test.value_b, test.difference, test.low, test.high, p_value
            )
        tests.append(test)
    return tests


def verdict(test: PairedTest, *, alpha: float = 0.05) -> str:
    """'A', 'B' or 'tie': which classifier is better on the metric, when the difference is significant."""
    if not test.significant(alpha) or test.difference == 0:
        return "tie"
    b_better = test.difference > 0 if higher_is_better(test.metric) else test.difference < 0
    return "B" if b_better else "A"


def comparison_records(
    tests: Sequence[PairedTest], *, a: str = "a", b: str = "b", alpha: float = 0.05
) -> list[dict[str, Any]]:
    """One record per paired test: A's and B's values (under the names given), B - A with its
    interval, the test, its p-value, and which is better (``verdict``: 'A', 'B' or 'tie')."""
    return [
        {"metric": t.metric, a: t.value_a, b: t.value_b, "difference": t.difference, "low": t.low,
         "high": t.high, "test": t.test, "p_value": t.p_value, "better": verdict(t, alpha=alpha)}
        for t in tests
    ]  # fmt: skip
