"""Every LABELWISE_* variable is read in one place, and a bad value is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelwise.core import LabelwiseError, Settings


def test_defaults_and_values(tmp_path: Path) -> None:
    settings = Settings.from_env({"LABELWISE_HOME": str(tmp_path)})
    assert (settings.workers, settings.max_text_chars, settings.metrics_refresh_s) == (1, 20_000, 5.0)
    settings = Settings.from_env(
        {"LABELWISE_HOME": str(tmp_path), "LABELWISE_WORKERS": "3", "LABELWISE_METRICS_REFRESH_S": "0"}
    )
    assert (settings.workers, settings.metrics_refresh_s) == (3, 0.0)
    assert settings.feedback_signals == ("accepted", "overridden", "clicked", "dismissed", "copied")
    chosen = Settings.from_env(
        {"LABELWISE_HOME": str(tmp_path), "LABELWISE_FEEDBACK_SIGNALS": "kept, edited,kept"}
    )
    assert (chosen.feedback_signals, chosen.canary_interval_s, chosen.estimate_window) == (
        ("kept", "edited"),
        0.0,
        1000,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LABELWISE_WORKERS", "0", "LABELWISE_WORKERS must be positive, got '0'"),
        ("LABELWISE_WORKERS", "two", "LABELWISE_WORKERS must be a whole number, got 'two'"),
        ("LABELWISE_METRICS_REFRESH_S", "-1", "must be zero or more, got '-1'"),
        ("LABELWISE_METRICS_REFRESH_S", "nan", "must be zero or more, got 'nan'"),
        ("LABELWISE_METRICS_REFRESH_S", "soon", "must be a number, got 'soon'"),
        ("LABELWISE_LOG_TEXT", "maybe", "LABELWISE_LOG_TEXT"),
        ("LABELWISE_FEEDBACK_SIGNALS", "clicked,Liked!", "not 'Liked!'"),
        (
            "LABELWISE_FEEDBACK_SIGNALS",
            ",".join(f"s{i}" for i in range(17)),
            "LABELWISE_FEEDBACK_SIGNALS: 1 to 16",
        ),
        ("LABELWISE_FEEDBACK_SIGNALS", " , ", "LABELWISE_FEEDBACK_SIGNALS"),
        ("LABELWISE_CANARY_INTERVAL_S", "-5", "LABELWISE_CANARY_INTERVAL_S must be zero or more"),
        ("LABELWISE_ESTIMATE_WINDOW", "0", "LABELWISE_ESTIMATE_WINDOW must be positive"),
    ],
)
def test_a_bad_value_names_the_variable(variable: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(LabelwiseError, match=message):
        Settings.from_env({"LABELWISE_HOME": str(tmp_path), variable: value})
