"""``ClassifierService``: the BentoML service. Thin: routes call ``ClassifierApp``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import bentoml
import httpx

from ..core import LabelwiseError, Settings
from ..monitoring import AccuracyEstimate, FeedbackSummary
from ._app import ClassifierApp
from ._args import ARGS, serves_embeddings
from ._errors import http_error
from ._guards import BearerAuthMiddleware, BodyLimitMiddleware
from ._runner import EmbeddingRunner, remote_classify
from ._schemas import (
    ClassifyBatchRequest,
    ClassifyBatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    EstimateRequest,
    FeedbackRequest,
    FeedbackResponse,
    ServiceMetadata,
    SummaryRequest,
)

__all__ = ["ClassifierService"]

T = TypeVar("T")


async def _answer(work: Awaitable[T], ctx: bentoml.Context) -> T:
    """The route's result, or labelwise's error as JSON with its status (every route alike)."""
    try:
        return await work
    except LabelwiseError as exc:
        error = http_error(exc)
        # With a context parameter BentoML applies ctx's status to any response, ours too.
        ctx.response.status_code = error.status
        return cast(Any, error.response())


@bentoml.service(
    name="labelwise",
    workers=ARGS.workers,
    traffic={"timeout": 120, "max_concurrency": 256},
)
class ClassifierService:
    """Online prediction, prediction log, feedback and online evaluation for one artifact."""

    # Declared so that `bentoml build --arg model=...` records the artifact in the bento.
    artifact_ref = bentoml.models.BentoModel(ARGS.model) if ARGS.model else None
    if serves_embeddings(ARGS.model):
        # Embedding artifacts classify in a runner process that batches across workers.
        runner = bentoml.depends(EmbeddingRunner)

    def __init__(self) -> None:
        runner = getattr(self, "runner", None)
        self.app = ClassifierApp.from_settings(
            Settings.from_env(model=ARGS.model or None),
            classify=remote_classify(runner) if runner is not None else None,
        )

    @bentoml.on_startup
    async def _start_backend(self) -> None:
        # Worker 1 (or the only process, under a test client) runs the monitor.
        self.app.startup(monitor=bentoml.server_context.worker_index in (None, 1))

    async def __is_ready__(self) -> bool:
        """/readyz: 503 until the backend, and the embedding runner if any, are ready."""
        if not self.app.ready():
            return False
        runner = getattr(self, "runner", None)
        if runner is None:
            return True
        # Asked briefly here, so that /readyz never waits on a runner process that is still
        # starting; BentoML asks again (allowing it 5 s) only once it has answered.
        try:
            return bool(await runner.is_ready(0.5))
        except (httpx.HTTPError, OSError):
            return False

    @bentoml.on_shutdown
    async def _close(self) -> None:
        await self.app.aclose()

    @bentoml.api(route="/classify")
    async def classify(self, request: ClassifyRequest, /, ctx: bentoml.Context) -> ClassifyResponse:
        """Classify one text; keep the prediction_id to send feedback."""
        return await _answer(self.app.classify(request), ctx)

    @bentoml.api(route="/classify_batch")
    async def classify_batch(
        self, request: ClassifyBatchRequest, /, ctx: bentoml.Context
    ) -> ClassifyBatchResponse:
        """Classify several texts in one request (concurrently against the backend)."""

        async def run() -> ClassifyBatchResponse:
            return ClassifyBatchResponse(predictions=await self.app.classify_batch(request.items))

        return await _answer(run(), ctx)

    @bentoml.api(route="/feedback")
    async def feedback(self, request: FeedbackRequest, /, ctx: bentoml.Context) -> FeedbackResponse:
        """Thumbs up or down on a prediction (repeating updates it), or an implicit signal on it."""

        async def run() -> FeedbackResponse:
            response = await self.app.feedback(request)
            ctx.response.status_code = 201 if response.created else 200
            return response

        return await _answer(run(), ctx)

    @bentoml.api(route="/feedback/summary")
    async def feedback_summary(self, request: SummaryRequest, /, ctx: bentoml.Context) -> FeedbackSummary:
        """Online evaluation from feedback: rates with intervals, accuracy, signals, time series."""
        summary = self.app.summary(
            since=request.since, artifact_tag=request.artifact_tag, bucket=request.bucket
        )
        return await _answer(summary, ctx)

    @bentoml.api(route="/accuracy/estimate")
    async def accuracy_estimate(self, request: EstimateRequest, /, ctx: bentoml.Context) -> AccuracyEstimate:
        """Accuracy and per-label precision estimated without labels on the latest predictions."""
        return await _answer(self.app.estimate(request.window), ctx)

    @bentoml.api(route="/metadata")
    async def metadata(self, ctx: bentoml.Context) -> ServiceMetadata:
        """The served artifact (resolved version), its labels and the service's settings."""

        async def run() -> ServiceMetadata:
            return self.app.metadata()

        return await _answer(run(), ctx)


ClassifierService.add_asgi_middleware(BearerAuthMiddleware)  # type: ignore[attr-defined]
ClassifierService.add_asgi_middleware(BodyLimitMiddleware)  # type: ignore[attr-defined]
