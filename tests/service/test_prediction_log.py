"""The prediction log writes in the background: no id given out is ever refused, no row is lost.

The store is the real SQLite store; a gate held in ``log_predictions`` stands for a store that
is slow or down at the moment a client acts, which the real one cannot be made to be on demand.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from labelwise.core import Settings
from labelwise.packaging import ClassifierArtifact, ClassifierRuntime, ClassifierSpec
from labelwise.service import ClassifierApp, ClassifyRequest, FeedbackRequest
from labelwise.store import PredictionStore
from tests.conftest import FakeBackend, spec_dict


class GatedStore(PredictionStore):
    """Writes predictions only once ``gate`` is set; fails the first ``failures`` writes."""

    def __init__(self, url: str, *, failures: int = 0) -> None:
        super().__init__(PredictionStore.from_url(url).engine)
        self.gate = threading.Event()
        self.failures = failures
        self.lots: list[int] = []

    def log_predictions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.gate.wait(timeout=30)
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        super().log_predictions(rows)
        self.lots.append(len(rows))


def _app(store: PredictionStore) -> ClassifierApp:
    spec = ClassifierSpec.from_dict(spec_dict(name="logged"))
    classifier = ClassifierRuntime(
        artifact=ClassifierArtifact(spec=spec), backend=FakeBackend(labels=["positive"])
    )
    return ClassifierApp(classifier=classifier, store=store, settings=Settings(model="logged"))


def _stored(store: PredictionStore) -> set[str]:
    return {row.id for row in store.predictions()}


def test_feedback_waits_for_a_pending_prediction_and_rows_come_in_lots(tmp_path: Path) -> None:
    store = GatedStore(f"sqlite:///{tmp_path / 'p.db'}")
    app = _app(store)

    async def scenario() -> None:
        answers = await asyncio.gather(*(app.classify(ClassifyRequest(text=f"t{i}")) for i in range(20)))
        # Answered before any row is written: the responses do not wait for the store.
        assert _stored(store) == set() and all(app.log.is_pending(a.prediction_id) for a in answers)
        asyncio.get_running_loop().call_later(0.2, store.gate.set)
        feedback = await app.feedback(FeedbackRequest(prediction_id=answers[-1].prediction_id, thumbs="up"))
        assert feedback.created
        assert _stored(store) == {a.prediction_id for a in answers}
        await app.aclose()

    asyncio.run(scenario())
    # Rows that came while the store was busy went in together: fewer writes than rows.
    assert sum(store.lots) == 20 and len(store.lots) < 20


def test_a_failed_write_is_tried_again_and_stopping_writes_what_is_pending(tmp_path: Path) -> None:
    store = GatedStore(f"sqlite:///{tmp_path / 'p.db'}", failures=1)
    store.gate.set()
    app = _app(store)

    async def scenario() -> list[str]:
        answers = await app.classify_batch([ClassifyRequest(text=f"t{i}") for i in range(5)])
        await app.aclose()  # as the service's shutdown does: waits for the retry
        return [a.prediction_id for a in answers]

    ids = asyncio.run(scenario())
    reopened = PredictionStore.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        assert _stored(reopened) == set(ids)
    finally:
        reopened.close()
