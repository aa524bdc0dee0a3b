"""`labelwise feedback report` read from a real store (SQLite file, or PostgreSQL when CI starts one)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labelwise.packaging import Prediction
from labelwise.store import PredictionStore


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labelwise.cli", "feedback", "report", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _predict(store: PredictionStore, at: datetime, label: str, tag: str = "clf:v1") -> str:
    prediction = Prediction(artifact_tag=tag, label=label, probabilities={label: 0.9})
    row = store.prediction_row(prediction, text="a review", metadata={}, keep_text=True)
    store.log_predictions([{**row, "created_at": at}])
    return str(row["id"])


def test_report_per_day_with_intervals(store: PredictionStore, tmp_path: Path) -> None:
    """Three days of a classifier getting worse: the series shows it, with counts and bands."""
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    right_per_day = [9, 6, 2]
    for day, right in enumerate(right_per_day):
        for i in range(10):
            at = start + timedelta(days=day, minutes=i)
            prediction_id = _predict(store, at, "positive")
            if i < right:
                store.put_feedback(prediction_id, thumbs="up", correct_label=None, comment=None)
            elif i < 9:
                store.add_event(prediction_id, signal="overridden", value=None, label="negative")
            store.add_event(prediction_id, signal="clicked", value=float(i), label=None)
    _predict(store, start, "negative", tag="clf:v0")  # another version, reported apart
    url = store.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "report" / "feedback.html"

    result = _report("--out", str(out), "--db-url", url, "--bucket", "day")

    assert result.returncode == 0, result.stderr
    assert "clf:v1: 30 predictions, 17 thumbs, 27 labelled, 3 day(s)" in result.stdout
    page = out.read_text()
    assert page.count("<img src='data:image/png;base64,") == 2 and "self-selected" in page
    summary = json.loads(out.with_suffix(".json").read_text())
    [v1] = [a for a in summary["by_artifact"] if a["artifact_tag"] == "clf:v1"]
    accuracy = [point["accuracy"] for point in v1["series"]]
    assert accuracy == pytest.approx([9 / 9, 6 / 9, 2 / 9])
    assert [point["labelled"] for point in v1["series"]] == [9, 9, 9]
    first = v1["series"][0]
    assert first["start"].startswith("2026-11-02T00:00:00")
    assert first["thumbs_up_rate"] == 1.0 and 0.6 < first["thumbs_up_interval"]["low"] < 0.75
    assert first["signals"]["clicked"]["mean_value"] == pytest.approx(4.5)
    assert first["feedback_share"] == pytest.approx(0.9)

    weekly = _report("--out", str(tmp_path / "week.html"), "--db-url", url, "--bucket", "week")
    assert (
        weekly.returncode == 0
        and "clf:v1: 30 predictions, 17 thumbs, 27 labelled, 1 week(s)" in weekly.stdout
    )


def test_report_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    cases = [
        (["--bucket", "month"], "hour, day or week"),
        ([], "no predictions in the store"),
        (["--artifact", "clf:v9"], "no predictions of clf:v9"),
    ]
    for extra, message in cases:
        result = _report("--out", str(tmp_path / "r.html"), "--db-url", url, *extra)
        assert result.returncode != 0 and message in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    store = PredictionStore.from_url(url)
    _predict(store, datetime.now(UTC), "positive")
    store.close()
    result = _report("--out", str(tmp_path / "r.csv"), "--db-url", url)
    assert result.returncode != 0 and "name it report.html" in result.stderr + result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
