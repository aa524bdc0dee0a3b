"""What the service does, apart from HTTP: classify and log, take feedback, summarise.

Kept out of the BentoML class so that the routes stay thin and the logic can be used and
tested without a server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from labelwise import __version__

from ..backends import BackendError
from ..core import Settings
from ..monitoring import AccuracyEstimate, Classify, FeedbackSummary, summarize
from ..packaging import ClassifierRuntime
from ..store import Bucket, PredictionStore
from . import _metrics as metrics
from ._errors import InvalidInput, UnknownLabel, UnknownPrediction
from ._log import PredictionLog
from ._monitor import Monitor
from ._schemas import (
    ClassifyRequest,
    ClassifyResponse,
    FeedbackRequest,
    FeedbackResponse,
    ServiceMetadata,
)
from ._warmup import Warmup

__all__ = ["ClassifierApp"]

# BentoML sets the root logger to WARNING; its own "bentoml" tree is shown.
logger = logging.getLogger("bentoml.labelwise")
# A worker writes a prediction's row within milliseconds of answering, or one write later under load.
_UNKNOWN_GRACE_S = 1.0
R = TypeVar("R")


class ClassifierApp:
    """One served classifier with its prediction store.

    ``classify`` defaults to the classifier in this process; embedding artifacts pass the
    runner's instead, and then this process never loads the embedding model.
    """

    def __init__(
        self,
        *,
        classifier: ClassifierRuntime,
        store: PredictionStore,
        settings: Settings,
        classify: Classify | None = None,
    ) -> None:
        self.classifier = classifier
        self.store = store
        self.settings = settings
        self._remote = classify is not None
        self._classify: Classify = classify or classifier.aclassify
        self._feedback_refreshed_at = float("-inf")
        self._warmup = Warmup()
        self.log = PredictionLog(store)
        self.counted = metrics.PredictionMetrics(self.tag, classifier.artifact_.spec.backend.cost_usd)
        self.monitor = Monitor(classifier.artifact_, store, settings)

    @classmethod
    def from_settings(cls, settings: Settings, *, classify: Classify | None = None) -> ClassifierApp:
        """Load (and verify) the artifact, resolving ``latest`` once, and open the store."""
        classifier = ClassifierRuntime.load(settings.require_model(), max_concurrency=64)
        tag = str(classifier.tag_)
        classifier.on_retry = lambda exc, _wait: metrics.BACKEND_RETRIES.labels(tag, exc.kind).inc()
        logger.warning("labelwise serving %s (asked for %s)", tag, settings.model)
        store = PredictionStore.from_url(settings.db_url)
        return cls(classifier=classifier, store=store, settings=settings, classify=classify)

    @property
    def tag(self) -> str:
        return str(self.classifier.tag_)

    def startup(self, *, monitor: bool = True) -> None:
        """Start the backend (e.g. the local llama.cpp server) in the background; requests wait for it.

        ``monitor``: also estimate accuracy and run the canary in the background (one worker does).
        """
        if not self._remote:
            self._warmup.start(self.classifier.prepare)
        if monitor:
            self.monitor.start()

    def ready(self) -> bool:
        return self._remote or self._warmup.ready()

    async def aclose(self) -> None:
        await self.monitor.stop()
        await self._warmup.cancel()
        await self.log.aclose()
        await self.classifier.aclose()
        self.store.close()

    def _check_text(self, text: str, *, field: str = "text") -> None:
        if not text.strip():
            raise InvalidInput(f"{field}: must contain some non-whitespace characters")
        if len(text) > self.settings.max_text_chars:
            raise InvalidInput(
                f"{field}: {len(text)} characters, more than the limit of {self.settings.max_text_chars} "
                "(LABELWISE_MAX_TEXT_CHARS); shorten the text"
            )

    async def classify(self, request: ClassifyRequest) -> ClassifyResponse:
        self._check_text(request.text)
        [response] = await self._classify_many([request])
        return response

    async def classify_batch(self, items: list[ClassifyRequest]) -> list[ClassifyResponse]:
        if len(items) > self.settings.max_batch_items:
            raise InvalidInput(
                f"items: {len(items)} texts, more than the limit of {self.settings.max_batch_items} "
                "(LABELWISE_MAX_BATCH_ITEMS); send them in smaller batches"
            )
        for i, item in enumerate(items):
            self._check_text(item.text, field=f"items[{i}].text")
        return await self._classify_many(items)

    async def _classify_many(self, items: list[ClassifyRequest]) -> list[ClassifyResponse]:
        try:
            await self._warmup.wait()
            predictions = await self._classify([item.text for item in items])
        except BackendError as exc:
            metrics.BACKEND_ERRORS.labels(self.tag, exc.kind).inc()
            logger.warning("backend failure answered to the client: %s", exc)
            raise
        # Log only once every prediction succeeded: a failed request leaves no rows behind.
        keep_text = self.settings.log_text
        rows = []
        for item, prediction in zip(items, predictions, strict=True):
            self.counted.count(prediction)
            rows.append(
                self.store.prediction_row(
                    prediction, text=item.text, metadata=item.metadata, keep_text=keep_text
                )
            )
        await self.log.add(rows)
        return [
            ClassifyResponse(
                prediction_id=row["id"],
                label=p.label,
                probabilities=p.probabilities,
                reason=p.reason,
                message=p.message,
                artifact_tag=p.artifact_tag,
                model=p.model,
                latency_s=p.latency_s,
            )  # fmt: skip
            for row, p in zip(rows, predictions, strict=True)
        ]

    async def feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        self._check_feedback(request)
        if self.log.is_pending(request.prediction_id):
            await self.log.flush()  # answered a moment ago: its row is on its way to the store
        if request.signal is not None:
            return await self._signal(request, request.signal)
        thumbs = request.thumbs
        assert thumbs is not None  # the request's validator allows only thumbs or a signal
        record = await self._for_stored_prediction(
            request.prediction_id,
            lambda: self.store.put_feedback(
                request.prediction_id,
                thumbs=thumbs,
                correct_label=request.correct_label,
                comment=request.comment,
            ),
        )
        metrics.FEEDBACK_WRITES.labels(record.artifact_tag, thumbs, record.predicted_label or "none").inc()
        await self._refresh_feedback_metrics()
        return FeedbackResponse(
            prediction_id=record.prediction_id,
            thumbs=thumbs,
            correct_label=record.correct_label,
            comment=record.comment,
            created=record.created,
        )

    def _check_feedback(self, request: FeedbackRequest) -> None:
        labels = self.classifier.artifact_.spec.task.labels
        if request.correct_label is not None and request.correct_label not in labels:
            raise UnknownLabel(
                f"correct_label: {request.correct_label!r} is not a label of {self.tag}; "
                f"labels: {', '.join(labels)}"
            )
        signals = self.settings.feedback_signals
        if request.signal is not None and request.signal not in signals:
            raise InvalidInput(
                f"signal: {request.signal!r} is not a signal of this service; signals: {', '.join(signals)} "
                "(LABELWISE_FEEDBACK_SIGNALS sets them)"
            )

    async def _signal(self, request: FeedbackRequest, signal: str) -> FeedbackResponse:
        record = await self._for_stored_prediction(
            request.prediction_id,
            lambda: self.store.add_event(
                request.prediction_id, signal=signal, value=request.value, label=request.correct_label
            ),
        )
        metrics.FEEDBACK_EVENTS.labels(record.artifact_tag, signal).inc()
        await self._refresh_feedback_metrics()
        return FeedbackResponse(
            prediction_id=record.prediction_id,
            signal=signal,
            value=record.value,
            correct_label=record.label,
            created=True,
        )

    async def _for_stored_prediction(self, prediction_id: str, write: Callable[[], R | None]) -> R:
        """``write`` (None when the prediction is not in the store), tried again for a moment.

        Another worker may have answered the prediction a moment ago, its row still on the way
        (implicit signals arrive right after the answer); only an id still unknown after
        ``_UNKNOWN_GRACE_S`` is refused.
        """
        deadline = time.monotonic() + _UNKNOWN_GRACE_S
        while (record := await asyncio.to_thread(write)) is None:
            if time.monotonic() >= deadline:
                raise UnknownPrediction(f"prediction_id: no prediction {prediction_id} in the store")
            await asyncio.sleep(0.05)
        return record

    async def _refresh_feedback_metrics(self) -> None:
        """The served artifact's current feedback counts and online accuracy, from the store.

        Each refresh counts the artifact's feedback: under a burst, at most one per refresh interval.
        """
        now = time.monotonic()
        if now - self._feedback_refreshed_at < self.settings.metrics_refresh_s:
            return
        self._feedback_refreshed_at = now
        # Totals only: the series (a Wilson interval per bucket) is for /feedback/summary.
        counts = await asyncio.to_thread(self.store.counts, bucket="week", artifact_tag=self.tag)
        served = summarize(self.classifier.artifact_.spec.task.labels, counts, series=False).overall
        metrics.FEEDBACK.labels(self.tag, "up").set(served.thumbs_up)
        metrics.FEEDBACK.labels(self.tag, "down").set(served.thumbs_down)
        if served.accuracy is not None:
            metrics.ONLINE_ACCURACY.labels(self.tag).set(served.accuracy)

    async def summary(
        self, *, since: datetime | None = None, artifact_tag: str | None = None, bucket: Bucket = "day"
    ) -> FeedbackSummary:
        await self.log.flush()  # count every prediction answered so far
        counts = await asyncio.to_thread(
            self.store.counts, bucket=bucket, since=since, artifact_tag=artifact_tag
        )
        return summarize(self.classifier.artifact_.spec.task.labels, counts, bucket=bucket)

    async def estimate(self, window: int | None) -> AccuracyEstimate:
        await self.log.flush()  # every prediction answered so far
        return await self.monitor.estimate(window or self.settings.estimate_window)

    def metadata(self) -> ServiceMetadata:
        artifact = self.classifier.artifact_
        spec = artifact.spec
        return ServiceMetadata(
            artifact_tag=self.tag,
            requested_tag=self.settings.require_model(),
            technique=spec.technique.kind,
            scoring=spec.scored_by,
            provider=spec.backend.provider,
            model=spec.model_name,
            labels=spec.task.labels,
            ordinal=spec.task.ordinal,
            content_hash=artifact.content_hash,
            lineage=artifact.lineage.model_dump() if artifact.lineage else None,
            labelwise_version=__version__,
            store=self.store.engine.dialect.name,
            auth=self.settings.auth,
            max_text_chars=self.settings.max_text_chars,
            log_text=self.settings.log_text,
            adaptive_batching=self._remote,
        )
