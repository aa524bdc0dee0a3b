"""Bootstrap intervals, McNemar's test and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.evaluation import accuracy, bootstrap_interval, compare_predictions, mcnemar, verdict


def test_bootstrap_interval_covers_at_its_nominal_rate() -> None:
    """200 seeded datasets of 150 items with true accuracy 0.7: the 95% interval should cover 0.7
    in about 95% of them (binomial sd over 200 runs is about 1.5 points)."""
    rng = np.random.default_rng(2026)
    covered = 0
    runs = 200
    for run in range(runs):
        correct = rng.random(150) < 0.7
        y_true = np.array(["a"] * 150, dtype=object)
        y_pred = np.where(correct, "a", "b").astype(object)
        estimate = bootstrap_interval(
            lambda i, t=y_true, p=y_pred: accuracy(t[i], p[i]), 150, n_resamples=400, random_state=run
        )
        covered += estimate.low <= 0.7 <= estimate.high
    assert 0.90 <= covered / runs <= 0.99


def test_bootstrap_is_seeded() -> None:
    data = np.arange(30) % 3 == 0
    first = bootstrap_interval(lambda i: float(data[i].mean()), 30, random_state=5)
    second = bootstrap_interval(lambda i: float(data[i].mean()), 30, random_state=5)
    assert first == second


def test_mcnemar_against_known_tables() -> None:
    # 10 items only A got right, 25 only B: chi-square with continuity correction,
    # (|10 - 25| - 1)^2 / 35 = 5.6, p = 0.01796.
    a = np.array([True] * 10 + [False] * 25 + [True] * 40)
    b = np.array([False] * 10 + [True] * 25 + [True] * 40)
    statistic, p_value, only_a, only_b = mcnemar(a, b)
    assert (only_a, only_b) == (10, 25)
    assert statistic == pytest.approx(5.6)
    assert p_value == pytest.approx(0.017962, abs=1e-5)
    # Few discordant pairs: the exact binomial test. 2 vs 8: two-sided p = 0.109375.
    a = np.array([True] * 2 + [False] * 8)
    _, p_value, _, _ = mcnemar(a, ~a)
    assert p_value == pytest.approx(0.109375)
    assert mcnemar(a, a)[1] == 1.0


def test_paired_comparison_finds_a_real_difference_and_no_fake_one() -> None:
    rng = np.random.default_rng(0)
    labels = ["1", "2", "3", "4", "5"]
    y_true = rng.choice(labels, 400).tolist()
    good = [t if rng.random() < 0.8 else rng.choice(labels) for t in y_true]
    bad = [t if rng.random() < 0.5 else rng.choice(labels) for t in y_true]
    tests = {
        t.metric: t
        for t in compare_predictions(y_true, bad, good, labels=labels, ordinal=True, n_resamples=500)
    }
    assert tests["accuracy"].test == "mcnemar" and tests["accuracy"].p_value < 0.001
    assert verdict(tests["accuracy"]) == "B" and verdict(tests["rmse"]) == "B"  # lower RMSE is better
    same = {t.metric: t for t in compare_predictions(y_true, good, good, labels=labels, n_resamples=200)}
    assert same["accuracy"].p_value == 1.0 and verdict(same["weighted_f1"]) == "tie"
