"""Online evaluation numbers against a hand computation."""

from __future__ import annotations

import pytest

from labelwise.service._summary import summarize
from labelwise.store import true_label

LABELS = ["1", "2", "3"]


def test_true_label_rules() -> None:
    assert true_label("2", "up", None) == "2"
    assert true_label("2", "down", None) is None
    assert true_label("2", "down", "3") == "3"
    assert true_label(None, "down", "1") == "1"


def test_hand_computed_summary() -> None:
    predictions = [("a:1", "1", 10), ("a:1", "2", 6), ("a:1", None, 4)]
    feedback = [
        ("a:1", "1", "up", None, 3),  # 3 right 1s
        ("a:1", "1", "down", "2", 1),  # a 2 called 1
        ("a:1", "2", "down", None, 2),  # wrong, truth unknown
        ("a:1", "2", "up", None, 1),  # a right 2
        ("a:1", None, "down", "3", 1),  # abstained on a 3
    ]
    summary = summarize(LABELS, predictions, feedback).by_artifact[0]
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
