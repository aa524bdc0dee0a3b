"""``ClassifierService``: the BentoML service. Thin: routes call ``ClassifierApp``."""

from __future__ import annotations

from typing import Any, cast

import bentoml

from ._app import ClassifierApp
from ._args import ARGS, serves_embeddings
from ._errors import ServiceError
from ._guards import BearerAuthMiddleware, BodyLimitMiddleware
from ._runner import EmbeddingRunner, remote_classify
from ._schemas import (
    ClassifyBatchRequest,
    ClassifyBatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackSummary,
    ServiceMetadata,
    SummaryRequest,
)
from ._settings import ServiceSettings

__all__ = ["ClassifierService"]


def _error(exc: ServiceError) -> Any:
    # BentoML sends a returned Response as it is: our JSON error body and status, also for 5xx.
    return cast(Any, exc.response())


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
            ServiceSettings.from_env(model=ARGS.model or None),
            classify=remote_classify(runner) if runner is not None else None,
        )

    @bentoml.on_startup
    async def _start_backend(self) -> None:
        await self.app.startup()

    @bentoml.on_shutdown
    async def _close(self) -> None:
        await self.app.aclose()

    @bentoml.api(route="/classify")
    async def classify(self, request: ClassifyRequest, /) -> ClassifyResponse:
        """Classify one text; keep the prediction_id to send feedback."""
        try:
            return await self.app.classify(request)
        except ServiceError as exc:
            return _error(exc)

    @bentoml.api(route="/classify_batch")
    async def classify_batch(self, request: ClassifyBatchRequest, /) -> ClassifyBatchResponse:
        """Classify several texts in one request (concurrently against the backend)."""
        try:
            return ClassifyBatchResponse(predictions=await self.app.classify_batch(request.items))
        except ServiceError as exc:
            return _error(exc)

    @bentoml.api(route="/feedback")
    async def feedback(self, request: FeedbackRequest, /, ctx: bentoml.Context) -> FeedbackResponse:
        """Thumbs up or down on a prediction, optionally with the correct label; repeating updates it."""
        try:
            response = await self.app.feedback(request)
        except ServiceError as exc:
            # With a context parameter BentoML applies ctx's status to any response, ours too.
            ctx.response.status_code = exc.status
            return _error(exc)
        ctx.response.status_code = 201 if response.created else 200
        return response

    @bentoml.api(route="/feedback/summary")
    async def feedback_summary(self, request: SummaryRequest, /) -> FeedbackSummary:
        """Online evaluation from feedback: counts, thumbs-up rate, accuracy, confusion matrix."""
        return await self.app.summary(since=request.since)

    @bentoml.api(route="/metadata")
    async def metadata(self) -> ServiceMetadata:
        """The served artifact (resolved version), its labels and the service's settings."""
        return self.app.metadata()


ClassifierService.add_asgi_middleware(BearerAuthMiddleware)  # type: ignore[attr-defined]
ClassifierService.add_asgi_middleware(BodyLimitMiddleware)  # type: ignore[attr-defined]
