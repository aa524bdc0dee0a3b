"""Acknowledged feedback survives: concurrent writes all land, and so do they across a SIGKILL."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelwise.loadtest import ServeProcess, send_feedback
from labelwise.packaging import ClassifierArtifact
from labelwise.service import PredictionStore
from labelwise.service._store import FeedbackRow, PredictionRow, _Base

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'durable.db'}"
        return
    url = os.environ.get("LABELWISE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: set LABELWISE_TEST_POSTGRES_URL (.ci/postgres.sh starts one)")
    yield url
    store = PredictionStore.from_url(url)
    _Base.metadata.drop_all(store.engine)
    store.close()


def _seed_predictions(store: PredictionStore, tag: str, count: int) -> list[str]:
    """Prediction rows to give feedback on, inserted in one transaction."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    with Session(store.engine) as session, session.begin():
        session.add_all(
            PredictionRow(
                id=i, created_at=datetime.now(UTC), artifact_tag=tag, label="neutral", attributes={},
                model="", text_sha256="0" * 64, text_length=0, latency_s=0.0, prompt_tokens=0,
                completion_tokens=0,
            )
            for i in ids
        )  # fmt: skip
    return ids


def _stored_feedback(store: PredictionStore, ids: list[str]) -> set[str]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(FeedbackRow.prediction_id).where(FeedbackRow.prediction_id.in_(ids)))
        return {row[0] for row in rows}


def test_concurrent_feedback_all_lands_and_survives_a_sigkill(
    db_url: str, served_artifact: ClassifierArtifact, tmp_path: Path
) -> None:
    tag = str(served_artifact.tag)
    store = PredictionStore.from_url(db_url)
    try:
        steady, crashed = _seed_predictions(store, tag, 2000), _seed_predictions(store, tag, 3000)
        server = ServeProcess(tag, db_url=db_url, log=tmp_path / "serve.log", workers=2)
        with server:
            acknowledged, failures = send_feedback(server.url, steady, concurrency=64)
            assert (len(acknowledged), failures) == (len(steady), 0), server.log_tail()
            # Repeats update the record: still exactly one per prediction.
            assert send_feedback(server.url, steady[:200], concurrency=32)[1] == 0
            with store.engine.connect() as connection:
                total = connection.execute(
                    select(func.count()).select_from(FeedbackRow).where(FeedbackRow.prediction_id.in_(steady))
                ).scalar_one()
            assert total == len(steady)

            # Kill every server process once a few hundred writes are acknowledged, others in flight.
            killer = threading.Thread(target=server.kill)

            def kill_midway(count: int) -> None:
                if count == 300:
                    killer.start()

            acknowledged, failures = send_feedback(
                server.url, crashed, concurrency=64, on_acknowledged=kill_midway
            )
            killer.join()
        assert failures > 0, "the kill came after the load had ended"
        with ServeProcess(tag, db_url=db_url, log=tmp_path / "restart.log") as restarted:
            assert restarted.url  # the store opens again after the crash
            stored = _stored_feedback(store, crashed)
        assert acknowledged, "no write was acknowledged before the kill"
        assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged writes were lost"
    finally:
        store.close()
