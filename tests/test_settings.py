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


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LABELWISE_WORKERS", "0", "LABELWISE_WORKERS must be positive, got '0'"),
        ("LABELWISE_WORKERS", "two", "LABELWISE_WORKERS must be a whole number, got 'two'"),
        ("LABELWISE_METRICS_REFRESH_S", "-1", "must be zero or more, got '-1'"),
        ("LABELWISE_METRICS_REFRESH_S", "nan", "must be zero or more, got 'nan'"),
        ("LABELWISE_METRICS_REFRESH_S", "soon", "must be a number, got 'soon'"),
        ("LABELWISE_LOG_TEXT", "maybe", "LABELWISE_LOG_TEXT"),
    ],
)
def test_a_bad_value_names_the_variable(variable: str, value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(LabelwiseError, match=message):
        Settings.from_env({"LABELWISE_HOME": str(tmp_path), variable: value})
