"""Metrics against scikit-learn and hand computations, over the input forms callers use."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import metrics as skm

from labelwise.evaluation import (
    accuracy,
    brier_score,
    confusion_matrix,
    coverage,
    expected_calibration_error,
    log_loss,
    macro_f1,
    mae,
    off_by_one_accuracy,
    per_class_report,
    quadratic_weighted_kappa,
    rmse,
    weighted_f1,
)

STARS = ["1", "2", "3", "4", "5"]
TRUE = ["1", "2", "3", "4", "5", "5", "4", "3", "2", "1"]
PRED = ["1", "3", "3", "5", "5", "4", "4", "1", "2", "2"]

forms = pytest.mark.parametrize("form", [list, np.array, pd.Series], ids=["list", "ndarray", "Series"])


@forms
def test_agree_with_scikit_learn(form: type) -> None:
    t, p = form(TRUE), form(PRED)
    assert accuracy(t, p) == pytest.approx(skm.accuracy_score(TRUE, PRED))
    assert macro_f1(t, p, labels=STARS) == pytest.approx(skm.f1_score(TRUE, PRED, average="macro"))
    assert weighted_f1(t, p, labels=STARS) == pytest.approx(skm.f1_score(TRUE, PRED, average="weighted"))
    assert (
        confusion_matrix(t, p, labels=STARS).tolist()
        == skm.confusion_matrix(TRUE, PRED, labels=STARS).tolist()
    )
    report = per_class_report(t, p, labels=STARS)
    assert report["3"]["precision"] == pytest.approx(0.5) and report["3"]["recall"] == pytest.approx(0.5)
    expected_qwk = skm.cohen_kappa_score([int(x) for x in TRUE], [int(x) for x in PRED], weights="quadratic")
    assert quadratic_weighted_kappa(t, p, labels=STARS) == pytest.approx(expected_qwk)


def test_ordinal_metrics_by_hand() -> None:
    # Distances |t - p|: 0 1 0 1 0 1 0 2 0 1 -> MAE 0.6, RMSE sqrt(0.8), within one: 9 of 10.
    assert mae(TRUE, PRED, labels=STARS) == pytest.approx(0.6)
    assert rmse(TRUE, PRED, labels=STARS) == pytest.approx(math.sqrt(0.8))
    assert off_by_one_accuracy(TRUE, PRED, labels=STARS) == pytest.approx(0.9)


def test_abstentions_are_wrong_for_accuracy_and_left_out_of_distances() -> None:
    t = ["1", "5", "5", "3"]
    p = ["1", None, "4", None]
    assert accuracy(t, p) == pytest.approx(0.25)
    assert coverage(t, p) == pytest.approx(0.5)
    assert mae(t, p, labels=STARS) == pytest.approx(0.5)  # over the two covered items: 0 and 1
    assert confusion_matrix(t, p, labels=STARS).sum() == 2  # abstentions fall in no column
    assert weighted_f1(t, p, labels=STARS) < weighted_f1(t, ["1", "5", "4", "3"], labels=STARS)


def test_ordinal_labels_outside_the_order_are_refused() -> None:
    with pytest.raises(ValueError, match="not in the label order"):
        mae(["1", "9"], ["1", "2"], labels=STARS)


def test_probability_metrics_by_hand() -> None:
    labels = ["a", "b"]
    y = ["a", "b", "a", "b"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [np.nan, np.nan]])
    # Covered rows: 3. Brier: (0.01+0.01) + (0.04+0.04) + (0.36+0.36) = 0.82 / 3.
    assert brier_score(y, proba, labels=labels) == pytest.approx(0.82 / 3)
    assert log_loss(y, proba, labels=labels) == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    )
    # Confidence 0.9 (right), 0.8 (right), 0.6 (wrong), bins of width 0.1:
    # |1-0.9|/3 + |1-0.8|/3 + |0-0.6|/3 = 0.3.
    assert expected_calibration_error(y, proba, labels=labels) == pytest.approx(0.3)


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(["a", "b", "c", "x", None])), min_size=1),
    st.sampled_from(["macro", "weighted"]),
    st.booleans(),
)
def test_f1_equals_scikit_learn(pairs: list[tuple[str, str | None]], average: str, weighted: bool) -> None:
    """The numpy F1 matches scikit-learn's, with abstentions, labels outside the set and weights."""
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    weights = [1 + i % 3 for i in range(len(pairs))] if weighted else None
    f1 = macro_f1 if average == "macro" else weighted_f1
    expected = skm.f1_score(
        y_true,
        ["__none__" if p is None else p for p in y_pred],
        labels=["a", "b", "c"],
        average=average,
        sample_weight=weights,
        zero_division=0,
    )
    assert f1(y_true, y_pred, labels=["a", "b", "c"], sample_weight=weights) == pytest.approx(expected)


def test_sample_weight() -> None:
    assert accuracy(["a", "b"], ["a", "a"], sample_weight=[3, 1]) == pytest.approx(0.75)
    assert mae(["1", "3"], ["1", "1"], labels=STARS, sample_weight=[1, 3]) == pytest.approx(1.5)
