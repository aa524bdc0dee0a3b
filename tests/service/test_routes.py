"""HTTP behaviour of the service, in process (Starlette TestClient over ``to_asgi()``)."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from labelwise.packaging import ClassifierArtifact
from labelwise.service._guards import OPEN_PATHS
from tests.fake_openai import FakeOpenAIServer


def _rows(db_path: Path, table: str, client: TestClient | None = None) -> int:
    """Rows in ``table``; with ``client``, after the service wrote every prediction it answered."""
    if client is not None:
        assert client.post("/feedback/summary", json={}).status_code == 200  # it flushes the log
    with sqlite3.connect(db_path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _wait_for_rows(db_path: Path, table: str, count: int, *, timeout_s: float = 10.0) -> None:
    """Prediction rows are written by a background task shortly after the response."""
    import time

    deadline = time.monotonic() + timeout_s
    while _rows(db_path, table) < count:
        assert time.monotonic() < deadline, f"{table} did not reach {count} rows"
        time.sleep(0.02)


def _metric(client: TestClient, name: str, **labels: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _classify(client: TestClient, text: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/classify", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_classify_answers_and_logs(
    client: TestClient, served_artifact: ClassifierArtifact, db_path: Path
) -> None:
    before = _rows(db_path, "labelwise_predictions", client)
    body = _classify(client, "The waiter was rude.", metadata={"city": "Phoenix", "stars_hint": 2})
    assert body["label"] == "negative"
    assert re.fullmatch(r"[0-9a-f]{32}", body["prediction_id"])
    assert body["artifact_tag"] == str(served_artifact.tag)
    assert body["latency_s"] > 0
    _wait_for_rows(db_path, "labelwise_predictions", before + 1)
    assert _rows(db_path, "labelwise_predictions") == before + 1
    with sqlite3.connect(db_path) as connection:
        text, metadata, label = connection.execute(
            "SELECT text, metadata, label FROM labelwise_predictions WHERE id = ?", (body["prediction_id"],)
        ).fetchone()
    assert text == "The waiter was rude." and '"city": "Phoenix"' in metadata and label == "negative"


def test_unparseable_output_is_an_answer_without_label(client: TestClient) -> None:
    body = _classify(client, "gibberish")
    assert body["label"] is None and body["reason"] == "no_label" and "no label" in body["message"]


def test_classify_batch(client: TestClient) -> None:
    response = client.post("/classify_batch", json={"items": [{"text": "I love it"}, {"text": "ok I guess"}]})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == ["positive", "neutral"]
    assert len({p["prediction_id"] for p in predictions}) == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"text": ""}, 400, "text"),
        ({"text": "   \n"}, 400, "text: must contain some non-whitespace"),
        ({"text": "x" * 2001}, 400, "text: 2001 characters, more than the limit of 2000"),
        ({"text": 5}, 400, "text"),
        ({}, 400, "text"),
        ({"text": "ok", "lang": "en"}, 400, "lang"),
        ({"text": "ok", "metadata": {"nested": {"a": 1}}}, 400, "metadata"),
        ({"text": "ok", "metadata": {f"k{i}": i for i in range(40)}}, 400, "at most 32 keys"),
    ],
    ids=[
        "empty",
        "blank",
        "too-long",
        "wrong-type",
        "missing",
        "unknown-field",
        "nested-metadata",
        "many-keys",
    ],
)
def test_bad_input_is_a_4xx_that_names_the_field(
    client: TestClient, db_path: Path, body: dict[str, Any], status: int, field: str
) -> None:
    before = _rows(db_path, "labelwise_predictions", client)
    response = client.post("/classify", json=body)
    assert response.status_code == status
    assert field in response.text
    assert _rows(db_path, "labelwise_predictions", client) == before


def test_batch_items_are_checked_before_anything_runs(
    client: TestClient, fake_openai: FakeOpenAIServer
) -> None:
    before = fake_openai.requests
    response = client.post("/classify_batch", json={"items": [{"text": "fine"}, {"text": " "}]})
    assert response.status_code == 400 and "items[1].text" in response.text
    assert fake_openai.requests == before


def test_backend_unavailable_is_503_and_logs_nothing(
    client: TestClient, fake_openai: FakeOpenAIServer, db_path: Path, served_artifact: ClassifierArtifact
) -> None:
    tag = str(served_artifact.tag)
    errors_before = _metric(
        client, "labelwise_backend_errors_total", artifact=tag, kind="backend_unavailable"
    )
    rows_before = _rows(db_path, "labelwise_predictions", client)
    fake_openai.fail_next(503, times=2)  # the first try and the one retry
    response = client.post("/classify", json={"text": "hello"})
    assert response.status_code == 503
    assert "the model backend is unavailable" in response.json()["error"]
    assert _rows(db_path, "labelwise_predictions", client) == rows_before
    assert (
        _metric(client, "labelwise_backend_errors_total", artifact=tag, kind="backend_unavailable")
        == errors_before + 1
    )
    assert _metric(client, "labelwise_backend_retries_total", artifact=tag, kind="backend_unavailable") >= 1
    # It recovers by itself once the backend does.
    assert _classify(client, "hello")["label"] == "neutral"


def test_rate_limited_backend_passes_retry_after(client: TestClient, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(429, times=2, headers={"retry-after": "0"})
    response = client.post("/classify", json={"text": "hello"})
    assert response.status_code == 503 and "rate limited" in response.text


def test_malformed_backend_answer_is_502(client: TestClient, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.fail_next(200, body='{"choices": "oops"}')
    response = client.post("/classify", json={"text": "hello"})
    assert response.status_code == 502 and "unexpected body" in response.text


def test_feedback_round_trip_and_summary(client: TestClient, db_path: Path) -> None:
    wrong = _classify(client, "The soup was cold but the staff were great")  # fake says negative
    right = _classify(client, "I love this place")
    first = client.post(
        "/feedback",
        json={"prediction_id": wrong["prediction_id"], "thumbs": "down", "correct_label": "neutral"},
    )
    assert first.status_code == 201 and first.json()["created"] is True
    again = client.post(
        "/feedback",
        json={
            "prediction_id": wrong["prediction_id"],
            "thumbs": "down",
            "correct_label": "positive",
            "comment": "mixed",
        },
    )
    assert again.status_code == 200 and again.json()["created"] is False
    assert (
        client.post("/feedback", json={"prediction_id": right["prediction_id"], "thumbs": "up"}).status_code
        == 201
    )
    with sqlite3.connect(db_path) as connection:
        stored = connection.execute(
            "SELECT thumbs, correct_label, comment FROM labelwise_feedback WHERE prediction_id = ?",
            (wrong["prediction_id"],),
        ).fetchall()
    assert stored == [("down", "positive", "mixed")]  # updated, never duplicated

    summary = client.post("/feedback/summary", json={}).json()
    [ours] = [s for s in summary["by_artifact"] if s["artifact_tag"] == wrong["artifact_tag"]]
    assert ours["feedback"] >= 2 and ours["thumbs_down"] >= 1 and ours["thumbs_up"] >= 1
    labels = ours["confusion_matrix"]["labels"]
    matrix = ours["confusion_matrix"]["matrix"]
    assert matrix[labels.index("positive")][labels.index("negative")] >= 1
    assert matrix[labels.index("positive")][labels.index("positive")] >= 1
    assert 0 < ours["feedback_share"] <= 1
    assert "self-selected" in summary["warning"]
    per_label = {row["label"]: row for row in ours["per_label"]}
    assert per_label["positive"]["thumbs_up"] >= 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prediction_id": "0" * 32, "thumbs": "up"}, 404, "no prediction 00000000"),
        ({"prediction_id": "not-an-id", "thumbs": "up"}, 400, "prediction_id"),
        ({"prediction_id": "0" * 32, "thumbs": "sideways"}, 400, "thumbs"),
    ],
)
def test_bad_feedback(
    client: TestClient, db_path: Path, body: dict[str, Any], status: int, message: str
) -> None:
    before = _rows(db_path, "labelwise_feedback")
    response = client.post("/feedback", json=body)
    assert response.status_code == status and message in response.text
    assert _rows(db_path, "labelwise_feedback") == before


def test_feedback_with_a_label_outside_the_set(client: TestClient, db_path: Path) -> None:
    prediction = _classify(client, "meh")
    before = _rows(db_path, "labelwise_feedback")
    response = client.post(
        "/feedback",
        json={"prediction_id": prediction["prediction_id"], "thumbs": "down", "correct_label": "mixed"},
    )
    assert response.status_code == 400
    assert "correct_label: 'mixed' is not a label" in response.json()["error"]
    assert _rows(db_path, "labelwise_feedback") == before


def test_implicit_signals_apart_from_thumbs(client: TestClient, served_artifact: ClassifierArtifact) -> None:
    tag = str(served_artifact.tag)
    overridden = _classify(client, "The fries were cold")  # the fake says negative
    accepted = _classify(client, "I love the tacos")
    before = client.post("/feedback/summary", json={"artifact_tag": tag, "bucket": "hour"}).json()["overall"]
    clicks_before = _metric(client, "labelwise_feedback_events_total", artifact=tag, signal="clicked")

    def signal(prediction: dict[str, Any], **body: Any) -> dict[str, Any]:
        response = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], **body})
        assert response.status_code == 201, response.text
        return dict(response.json())

    answer = signal(overridden, signal="overridden", correct_label="neutral")
    assert (answer["signal"], answer["correct_label"], answer["thumbs"]) == ("overridden", "neutral", None)
    signal(accepted, signal="accepted")
    assert signal(accepted, signal="clicked", value=1.5)["value"] == 1.5
    signal(accepted, signal="clicked", value=2.5)

    summary = client.post("/feedback/summary", json={"artifact_tag": tag, "bucket": "hour"}).json()
    assert summary["bucket"] == "hour" and [s["artifact_tag"] for s in summary["by_artifact"]] == [tag]
    after = summary["overall"]
    assert after["labelled"] == before["labelled"] + 1  # the override named a label
    assert (after["thumbs_up"], after["thumbs_down"]) == (before["thumbs_up"], before["thumbs_down"])
    clicked = after["signals"]["clicked"]
    assert clicked["events"] == before["signals"].get("clicked", {}).get("events", 0) + 2
    latest = after["series"][-1]
    assert latest["start"].endswith(":00:00Z") and latest["signals"]["accepted"]["predictions"] >= 1
    assert latest["signals"]["clicked"]["mean_value"] is not None
    assert after["accuracy_interval"]["low"] <= after["accuracy"] <= after["accuracy_interval"]["high"]
    clicks = _metric(client, "labelwise_feedback_events_total", artifact=tag, signal="clicked")
    assert clicks == clicks_before + 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"signal": "liked"}, 400, "'liked' is not a signal of this service; signals: accepted, overridden"),
        ({"signal": "accepted", "thumbs": "up"}, 400, "either thumbs"),
        ({}, 400, "either thumbs"),
        ({"signal": "clicked", "comment": "hm"}, 400, "comment: only taken with thumbs"),
        ({"signal": "accepted", "correct_label": "neutral"}, 400, "correct_label: only taken with"),
        ({"signal": "overridden", "correct_label": "mixed"}, 400, "'mixed' is not a label"),
        ({"signal": "Clicked!"}, 400, "signal"),
        ({"signal": "x" * 40}, 400, "signal"),
        ({"thumbs": "up", "value": 1}, 400, "value: only taken with a signal"),
        ({"signal": "clicked", "value": "NaN"}, 400, "value"),
    ],
)
def test_bad_signals_are_refused_and_store_nothing(
    client: TestClient, db_path: Path, body: dict[str, Any], status: int, message: str
) -> None:
    prediction = _classify(client, "so-so")
    before = _rows(db_path, "labelwise_feedback_events", client)
    response = client.post("/feedback", json={"prediction_id": prediction["prediction_id"], **body})
    assert response.status_code == status and message in response.text, response.text
    assert _rows(db_path, "labelwise_feedback_events") == before


def test_a_signal_waits_a_moment_for_a_prediction_another_worker_is_writing(
    client: TestClient, db_path: Path, served_artifact: ClassifierArtifact
) -> None:
    """Another worker answered; its row lands 0.3 s after this worker is asked about it."""
    from labelwise.packaging import Prediction
    from labelwise.store import PredictionStore

    store = PredictionStore.from_url(f"sqlite:///{db_path}")
    row = store.prediction_row(
        Prediction(label="positive", artifact_tag=str(served_artifact.tag)),
        text="t",
        metadata={},
        keep_text=True,
    )
    late = threading.Timer(0.3, store.log_predictions, args=([row],))
    late.start()
    try:
        response = client.post("/feedback", json={"prediction_id": row["id"], "signal": "accepted"})
    finally:
        late.join()
        store.close()
    assert response.status_code == 201, response.text


def test_signal_on_an_unknown_prediction(client: TestClient, db_path: Path) -> None:
    before = _rows(db_path, "labelwise_feedback_events", client)
    response = client.post("/feedback", json={"prediction_id": "0" * 32, "signal": "clicked"})
    assert response.status_code == 404 and "no prediction" in response.text
    assert _rows(db_path, "labelwise_feedback_events") == before


def test_accuracy_estimate_of_an_artifact_without_probabilities(client: TestClient) -> None:
    _classify(client, "I love it")
    estimate = client.post("/accuracy/estimate", json={"window": 50})
    assert estimate.status_code == 200, estimate.text
    body = estimate.json()
    assert body["value"] is None and body["predictions"] == 0 and body["without_confidence"] >= 1
    assert "gives no probabilities" in body["warning"] and "--eval DATA" in body["warning"]
    refused = client.post("/accuracy/estimate", json={"window": 0})
    assert refused.status_code == 400 and "window" in refused.text


def test_metadata_reports_the_resolved_artifact(
    client: TestClient, served_artifact: ClassifierArtifact
) -> None:
    body = client.post("/metadata").json()
    assert body["artifact_tag"] == str(served_artifact.tag)
    assert body["labels"] == ["negative", "neutral", "positive"]
    assert body["store"] == "sqlite" and "sqlite:" not in str(body)
    assert body["auth"] is False


def test_metrics_show_labelwise_series(client: TestClient, served_artifact: ClassifierArtifact) -> None:
    tag = str(served_artifact.tag)
    before = _metric(client, "labelwise_predictions_total", artifact=tag, label="positive")
    _classify(client, "great food")
    assert _metric(client, "labelwise_predictions_total", artifact=tag, label="positive") == before + 1
    text = client.get("/metrics").text
    for name in (
        "labelwise_tokens_total",
        "labelwise_estimated_cost_usd_total",
        "labelwise_backend_latency_seconds_bucket",
    ):
        assert name in text
    assert _metric(client, "labelwise_estimated_cost_usd_total", artifact=tag) > 0


def test_auth_protects_all_but_health_and_metrics(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations = [
        (method.upper(), path)
        for path, methods in client.get("/docs.json").json()["paths"].items()
        for method in methods
        if path not in OPEN_PATHS
    ]
    assert ("POST", "/classify") in operations and len(operations) >= 5
    monkeypatch.setenv("LABELWISE_API_KEY", "s3cret-token")
    for method, path in [*operations, ("GET", "/docs.json"), ("GET", "/docs")]:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret-token"}):
            refused = client.request(method, path, json={"text": "hi"}, headers=headers)
            assert refused.status_code == 401, (method, path, headers)
            assert "Bearer" in refused.json()["error"]
    ok = client.post("/classify", json={"text": "hi"}, headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    for route in ("/livez", "/readyz", "/metrics"):
        assert client.get(route).status_code == 200
    assert "s3cret-token" not in client.get("/metrics").text
