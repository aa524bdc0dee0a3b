"""The embedding runner: embeds and classifies texts in batches, for every service worker.

An embedding model answers 64 texts in about the time of a few single ones (one request to an
embeddings endpoint, one forward pass on the CPU). Under ``bentoml serve`` the runner is a
dependency service with a process of its own, and BentoML's adaptive batching merges the texts
of concurrent requests, from every worker of ``ClassifierService``, into one call.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import bentoml
from pydantic import BaseModel

from ..backends import BackendError, BackendUnavailable
from ..core import Reason, Settings
from ..packaging import ClassifierRuntime, Prediction
from ._args import ARGS
from ._warmup import Warmup

__all__ = ["EmbeddingRunner", "RunnerReply", "remote_classify"]

# Read when the module is imported: BentoML fixes a batchable API's limits at definition.
_SETTINGS = Settings.from_env()


class RunnerReply(BaseModel):
    """One text's prediction, or the backend failure that prevented it (crosses the process boundary)."""

    prediction: Prediction | None = None
    error: Reason | None = None  # the BackendError's kind, so the service answers as if in process
    message: str = ""
    retry_after: float | None = None

    @classmethod
    def failure(cls, exc: BackendError) -> RunnerReply:
        return cls(error=exc.kind, message=str(exc), retry_after=exc.retry_after)

    def result(self) -> Prediction:
        """The prediction, or the backend error raised again on this side."""
        if self.prediction is not None:
            return self.prediction
        raise BackendError.from_kind(
            self.error or Reason.BACKEND_ERROR, self.message, retry_after=self.retry_after
        )


@bentoml.service(
    name="labelwise-embedding-runner",
    workers=1,  # one model per machine: torch already uses every core for one batch
    traffic={"timeout": 120},
)
class EmbeddingRunner:
    """Classifies with the served embedding artifact, batching concurrent requests."""

    def __init__(self) -> None:
        self.classifier = ClassifierRuntime.load(ARGS.model)
        self._warmup = Warmup()

    @bentoml.on_startup
    async def _load_model(self) -> None:
        self._warmup.start(self.classifier.prepare)

    async def __is_ready__(self) -> bool:
        """/readyz: 503 while the embedding model loads."""
        return self._warmup.ready()

    @bentoml.on_shutdown
    async def _close(self) -> None:
        await self._warmup.cancel()
        await self.classifier.aclose()

    @bentoml.api(
        batchable=True, max_batch_size=_SETTINGS.max_batch_size, max_latency_ms=_SETTINGS.max_latency_ms
    )
    async def classify(self, texts: list[str]) -> list[RunnerReply]:
        """One reply per text, in order; a backend failure fails the whole batch alike."""
        await self._warmup.wait()
        try:
            predictions = await self.classifier.aclassify(texts)
        except BackendError as exc:
            return [RunnerReply.failure(exc)] * len(texts)
        return [RunnerReply(prediction=p) for p in predictions]


def _keep_session(client: Any) -> None:
    """Stop BentoML's runner client from recycling its HTTP session while calls are in flight.

    Since 1.4.31 the client closes its session every 100 calls or 5 minutes, and the close
    aborts the calls still running on it (as "Server disconnected"). The attribute is private:
    without it the retries in ``remote_classify`` still cover the aborted calls.
    """
    manager = getattr(client, "_session_manager", None)
    if manager is not None and hasattr(manager, "max_requests") and hasattr(manager, "max_age"):
        manager.max_requests = sys.maxsize
        manager.max_age = float("inf")


def remote_classify(runner: Any, *, attempts: int = 3) -> Callable[[list[str]], Awaitable[list[Prediction]]]:
    """``classify`` through the runner, with its failures raised as the backend errors they were.

    A call whose connection dropped is sent again: classifying is idempotent.
    """
    import aiohttp

    client = runner.to_async
    _keep_session(client)

    async def classify(texts: list[str]) -> list[Prediction]:
        lost: Exception | None = None
        for _ in range(attempts):
            try:
                replies = await client.classify(texts)
                break
            except aiohttp.ClientConnectionError as exc:
                lost = exc
            except (bentoml.exceptions.BentoMLException, aiohttp.ClientError) as exc:  # overloaded, timed out
                raise BackendUnavailable(f"the embedding runner did not answer: {exc}") from None
        else:
            raise BackendUnavailable(f"lost the connection to the embedding runner {attempts} times: {lost}")
        return [RunnerReply.model_validate(reply).result() for reply in replies]

    return classify
