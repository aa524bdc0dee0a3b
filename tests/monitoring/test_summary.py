"""Online evaluation numbers against a hand computation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from labelwise.monitoring import summarize, wilson
from labelwise.store import FeedbackCounts, true_label

LABELS = ["1", "2", "3"]


def test_true_label_rules() -> None:
    assert true_label("2", "up", None) == "2"
    assert true_label("2", "down", None) is None
    assert true_label("2", "down", "3") == "3"
    assert true_label(None, "down", "1") == "1"


def test_hand_computed_summary() -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    predictions = [("a:1", day, "1", 10), ("a:1", day, "2", 6), ("a:1", day, None, 4)]
    thumbs = [
        ("a:1", day, "1", "up", None, 3),  # 3 right 1s
        ("a:1", day, "1", "down", "2", 1),  # a 2 called 1
        ("a:1", day, "2", "down", None, 2),  # wrong, truth unknown
        ("a:1", day, "2", "up", None, 1),  # a right 2
        ("a:1", day, None, "down", "3", 1),  # abstained on a 3
    ]
    counts = FeedbackCounts(predictions=predictions, thumbs=thumbs, overrides=[], signals=[])
    summary = summarize(LABELS, counts).by_artifact[0]
    assert summary.predictions == 20 and summary.feedback == 8
    assert summary.feedback_share == pytest.approx(8 / 20)
    assert summary.thumbs_up_rate == pytest.approx(4 / 8)
    assert summary.labelled == 6  # 3 + 1 + 1 + 1
    assert summary.accuracy == pytest.approx(4 / 6)
    assert summary.confusion_matrix.matrix == [[3, 0, 0], [1, 1, 0], [0, 0, 0]]
    per_label = {row.label: row for row in summary.per_label}
    assert per_label["1"].precision == pytest.approx(3 / 4)
    assert per_label["2"].recall == pytest.approx(1 / 2)
    assert per_label["3"].recall == pytest.approx(0.0) or per_label["3"].recall is None
    assert per_label["2"].thumbs_down == 2 and per_label["1"].feedback == 4


def test_series_overrides_and_signals_by_hand() -> None:
    """Two days: overrides naming a label count as labels, signals stay apart from thumbs."""
    monday, tuesday = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    counts = FeedbackCounts(
        predictions=[("a:1", monday, "1", 8), ("a:1", monday, "2", 2), ("a:1", tuesday, "1", 5)],
        thumbs=[("a:1", monday, "1", "up", None, 4), ("a:1", tuesday, "1", "down", "2", 1)],
        overrides=[("a:1", tuesday, "1", "3", 2)],  # two 1s overridden to 3, no thumbs on them
        signals=[
            ("a:1", monday, "accepted", 6, 5, 0.0, 0),
            ("a:1", tuesday, "clicked", 4, 2, 3.0, 2),
            ("a:1", tuesday, "overridden", 2, 2, 0.0, 0),
        ],
    )
    summary = summarize(LABELS, counts, bucket="day").by_artifact[0]
    first, second = summary.series
    assert (first.start, second.start) == (monday, tuesday)
    assert (first.predictions, first.feedback, first.thumbs_up_rate) == (10, 4, 1.0)
    assert first.accuracy == 1.0 and first.labelled == 4
    assert second.feedback == 1 and second.thumbs_up_rate == 0.0
    assert second.labelled == 3 and second.accuracy == 0.0  # one correction, two overrides
    assert second.feedback_share == pytest.approx(1 / 5)
    assert first.signals["accepted"].share == pytest.approx(5 / 10)
    assert second.signals["clicked"].mean_value == pytest.approx(1.5)
    assert second.signals["clicked"].events == 4 and second.signals["clicked"].predictions == 2
    assert summary.labelled == 7 and summary.accuracy == pytest.approx(4 / 7)
    assert summary.thumbs_up == 4 and summary.thumbs_down == 1  # overrides are not thumbs
    assert summary.signals["accepted"].predictions == 5 and summary.predictions == 15
    assert summary.confusion_matrix.matrix == [[4, 0, 0], [1, 0, 0], [2, 0, 0]]
    interval = summary.accuracy_interval
    expected = binomtest(4, 7).proportion_ci(method="wilson")
    assert interval is not None
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high))
    assert interval.low < 4 / 7 < interval.high


def test_wilson_interval_is_honest_at_the_edges() -> None:
    assert wilson(0, 0) is None
    low = wilson(0, 5)
    high = wilson(5, 5)
    assert low is not None and low.low == pytest.approx(0.0, abs=1e-12) and 0.4 < low.high < 0.5
    assert high is not None and high.high == pytest.approx(1.0) and 0.5 < high.low < 0.6


days = st.sampled_from([datetime(2026, 11, d, tzinfo=UTC) for d in (2, 3, 4)])
labels = st.sampled_from(LABELS)


@st.composite
def store_counts(draw: st.DrawFn) -> FeedbackCounts:
    """Counts a store could hold: feedback only on predictions that exist, at most one thumbs each."""
    predictions, thumbs, overrides, signals = [], [], [], []
    for day in draw(st.lists(days, min_size=1, max_size=3, unique=True)):
        for label in draw(st.lists(labels, min_size=1, max_size=3, unique=True)):
            made = draw(st.integers(1, 50))
            predictions.append(("a:1", day, label, made))
            rated = draw(st.integers(0, made))
            up = draw(st.integers(0, rated))
            thumbs.append(("a:1", day, label, "up", None, up))
            thumbs.append(("a:1", day, label, "down", draw(st.none() | labels), rated - up))
            overridden = draw(st.integers(0, made - rated))
            overrides.append(("a:1", day, label, draw(labels), overridden))
            reached = draw(st.integers(0, made))
            events = reached + draw(st.integers(0, 5))
            signals.append(("a:1", day, f"s_{label}", events, reached, 1.0 * reached, reached))
    return FeedbackCounts(predictions=predictions, thumbs=thumbs, overrides=overrides, signals=signals)


@given(store_counts())
@settings(max_examples=60, deadline=None)
def test_series_add_up_and_every_interval_holds_its_rate(counts: FeedbackCounts) -> None:
    summary = summarize(LABELS, counts).overall
    assert summary.predictions == sum(point.predictions for point in summary.series)
    assert summary.labelled == sum(point.labelled for point in summary.series)
    assert summary.feedback == sum(point.feedback for point in summary.series) <= summary.predictions
    for window in [summary, *summary.series]:
        for rate, interval in ((window.accuracy, window.accuracy_interval),
                               (window.thumbs_up_rate, window.thumbs_up_interval)):  # fmt: skip
            assert (rate is None) == (interval is None)
            if rate is not None and interval is not None:
                assert 0 <= interval.low <= rate <= interval.high <= 1
        for signal in window.signals.values():
            assert signal.share is not None and 0 <= signal.share <= 1
    assert sum(map(sum, summary.confusion_matrix.matrix)) == summary.labelled
