"""The prediction store on SQLite (a real file) and PostgreSQL (a real server, when CI starts one)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from labelwise.monitoring import summarize
from labelwise.packaging import Prediction
from labelwise.store import PredictionRow, PredictionStore


def log(
    store: PredictionStore, label: str | None = "positive", *, tag: str = "clf:aaaa", keep_text: bool = True
) -> str:
    prediction = Prediction(
        artifact_tag=tag,
        label=label,
        probabilities={"positive": 0.8, "negative": 0.2} if label else None,
        reason=None if label else "no_label",
        latency_s=0.1,
        prompt_tokens=10,
        completion_tokens=1,
        model="m",
    )
    row = store.prediction_row(prediction, text="good", metadata={"city": "Phoenix"}, keep_text=keep_text)
    store.log_predictions([row])
    return str(row["id"])


def logged(store: PredictionStore, prediction_id: str) -> PredictionRow:
    [row] = [row for row in store.predictions() if row.id == prediction_id]
    return row


def test_prediction_round_trip(store: PredictionStore) -> None:
    prediction_id = log(store)
    row = logged(store, prediction_id)
    assert row.label == "positive" and row.confidence == pytest.approx(0.8)
    assert row.attributes == {"city": "Phoenix"} and row.text == "good" and row.text_length == 4
    hashed = logged(store, log(store, keep_text=False))
    assert hashed.text is None
    assert hashed.text_sha256 == "770e607624d689265ca6c44884d0807d9b054d23c473c106c72be9de08b7376c"


def test_feedback_is_upserted_never_duplicated(store: PredictionStore) -> None:
    prediction_id = log(store)
    first = store.put_feedback(prediction_id, thumbs="down", correct_label="negative", comment=None)
    second = store.put_feedback(prediction_id, thumbs="up", correct_label=None, comment="changed my mind")
    assert first is not None and first.created
    assert second is not None and not second.created
    rows = list(store.feedback_rows())
    assert len(rows) == 1
    assert (rows[0][1].thumbs, rows[0][1].comment) == ("up", "changed my mind")


def test_feedback_for_an_unknown_prediction_writes_nothing(store: PredictionStore) -> None:
    assert store.put_feedback("f" * 32, thumbs="up", correct_label=None, comment=None) is None
    assert list(store.feedback_rows()) == []


def test_concurrent_feedback_on_one_prediction_leaves_one_row(store: PredictionStore) -> None:
    prediction_id = log(store)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            store.put_feedback(
                prediction_id, thumbs="up" if i % 2 else "down", correct_label=None, comment=str(i)
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(list(store.feedback_rows())) == 1


def test_counts_feed_the_summary(store: PredictionStore) -> None:
    a = log(store, "positive")
    b = log(store, "negative")
    log(store, None)
    log(store, "positive", tag="clf:bbbb")
    store.put_feedback(a, thumbs="up", correct_label=None, comment=None)
    store.put_feedback(b, thumbs="down", correct_label="positive", comment=None)
    summary = summarize(["negative", "positive"], store.counts())
    overall = summary.overall
    assert (overall.predictions, overall.feedback, overall.labelled) == (4, 2, 2)
    assert overall.accuracy == pytest.approx(0.5)
    assert overall.confusion_matrix.matrix == [[0, 0], [1, 1]]
    assert [s.artifact_tag for s in summary.by_artifact] == ["clf:aaaa", "clf:bbbb"]
    assert summary.by_artifact[1].feedback == 0 and summary.by_artifact[1].accuracy is None
    later = datetime.now(UTC) + timedelta(hours=1)
    assert store.counts(since=later).predictions == []


def log_at(store: PredictionStore, at: datetime, label: str = "positive") -> str:
    """A prediction made at a chosen time, so buckets can be checked by hand."""
    prediction = Prediction(artifact_tag="clf:aaaa", label=label, probabilities={label: 0.9})
    row = store.prediction_row(prediction, text="t", metadata={}, keep_text=False)
    store.log_predictions([{**row, "created_at": at}])
    return str(row["id"])


@pytest.mark.parametrize(
    ("bucket", "starts"),
    [
        ("hour", ["2026-11-04T09:00", "2026-11-04T10:00", "2026-11-08T23:00", "2026-11-09T00:00"]),
        ("day", ["2026-11-04T00:00", "2026-11-08T00:00", "2026-11-09T00:00"]),
        ("week", ["2026-11-02T00:00", "2026-11-09T00:00"]),  # ISO weeks start on Monday
    ],
)
def test_buckets_in_the_database_dialect(store: PredictionStore, bucket: str, starts: list[str]) -> None:
    times = ["2026-11-04T09:59:59", "2026-11-04T10:00:00", "2026-11-08T23:30:00", "2026-11-09T00:00:01"]
    for at in times:
        log_at(store, datetime.fromisoformat(at).replace(tzinfo=UTC))
    counts = store.counts(bucket=bucket)  # type: ignore[arg-type]
    found = sorted({start for _, start, _, _ in counts.predictions})
    assert [start.strftime("%Y-%m-%dT%H:%M") for start in found] == starts
    assert all(start.tzinfo is not None for start in found)


def test_overrides_and_signals_in_the_store(store: PredictionStore) -> None:
    overridden, rated, clicked = (log(store, "positive") for _ in range(3))
    assert store.add_event(overridden, signal="overridden", value=None, label="neutral") is not None
    store.add_event(overridden, signal="overridden", value=None, label="negative")  # the latest counts
    store.put_feedback(rated, thumbs="up", correct_label=None, comment=None)
    store.add_event(rated, signal="overridden", value=None, label="negative")  # thumbs win over it
    store.add_event(clicked, signal="clicked", value=2.0, label=None)
    store.add_event(clicked, signal="clicked", value=None, label=None)
    assert store.add_event("f" * 32, signal="clicked", value=None, label=None) is None
    counts = store.counts()
    assert [row[2:] for row in counts.overrides] == [("positive", "negative", 1)]
    signals = {row[2]: row[3:] for row in counts.signals}
    assert signals["clicked"] == (2, 1, pytest.approx(2.0), 1)
    assert signals["overridden"][:2] == (3, 2)
    summary = summarize(["negative", "neutral", "positive"], counts).overall
    assert (summary.labelled, summary.accuracy, summary.thumbs_up) == (2, 0.5, 1)
    assert summary.signals["clicked"].mean_value == pytest.approx(2.0)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = PredictionStore.from_url(f"sqlite:///{tmp_path / 'wal.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()


def test_export_holds_thumbs_and_overrides_naming_a_label(store: PredictionStore, tmp_path: Path) -> None:
    from labelwise.store import export_feedback

    rated, overridden, clicked = (log(store, "positive") for _ in range(3))
    store.put_feedback(rated, thumbs="down", correct_label="negative", comment="no")
    store.add_event(rated, signal="overridden", value=None, label="positive")  # its thumbs win
    store.add_event(overridden, signal="overridden", value=None, label="neutral")
    store.add_event(overridden, signal="overridden", value=None, label="negative")
    store.add_event(clicked, signal="clicked", value=1.0, label=None)
    out = tmp_path / "feedback.csv"
    url = store.engine.url.render_as_string(hide_password=False)
    assert export_feedback(out, db_url=url) == 2
    frame = pd.read_csv(out).set_index("prediction_id")
    assert frame.loc[rated, "label"] == "negative" and frame.loc[rated, "thumbs"] == "down"
    assert frame.loc[overridden, "label"] == "negative" and frame.loc[overridden, "signal"] == "overridden"
    assert clicked not in frame.index
