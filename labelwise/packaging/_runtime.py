"""An artifact ready to classify: its backend, its connections, its lifecycle.

It imports no scikit-learn, so the commands and the service that only classify start fast;
``Classifier`` adds scikit-learn's estimator contract on top of it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ..backends import BackendError, Limiter
from ..core import LabelwiseError, run_sync
from ._artifact import ClassifierArtifact, load_artifact
from ._outcomes import Prediction
from ._tag import ArtifactTag
from ._techniques import RunOptions, Technique, technique_for, texts_of

__all__ = ["ClassifierRuntime"]

T = TypeVar("T")


class ClassifierRuntime:
    """A packaged classifier with what it needs to run: backend, embedder, head, limits.

    Close it when done (``with``/``async with``, ``close()``, ``aclose()``): that releases the
    connections of its backend and embedder. The parameters are ``Classifier``'s.
    """

    def __init__(
        self,
        *,
        artifact: ClassifierArtifact | None = None,
        backend: Any = None,
        http_client: httpx.AsyncClient | None = None,
        max_concurrency: int = 8,
        random_state: int | None = None,
        on_retry: Callable[[BackendError, float], None] | None = None,
        rate_limiter: Limiter | None = None,
        abstain_label: str | None = None,  # for Classifier.predict; here so both take the same
        use_cache: bool = True,
    ) -> None:
        self.artifact = artifact
        self.backend = backend
        self.http_client = http_client
        self.max_concurrency = max_concurrency
        self.random_state = random_state
        self.on_retry = on_retry
        self.rate_limiter = rate_limiter
        self.abstain_label = abstain_label
        self.use_cache = use_cache

    @classmethod
    def load(cls, tag: str | ArtifactTag, **params: Any) -> Self:
        """Load an artifact from the store (verifying its hash) and wrap it."""
        return cls(artifact=load_artifact(tag), **params)

    # -- fitted state ------------------------------------------------------------------------

    @property
    def artifact_(self) -> ClassifierArtifact:
        if self.artifact is None:
            raise LabelwiseError("this Classifier holds no artifact: use Classifier.load(tag)")
        return self.artifact

    @property
    def tag_(self) -> ArtifactTag:
        return self.artifact_.tag

    @functools.cached_property
    def technique_(self) -> Technique:
        """The technique's runtime: its backend, embedder and head, made on first use."""
        artifact = self.artifact_
        technique = technique_for(artifact.spec)
        # Never more in flight than the backend serves at once (1 for the embedded server).
        limit = technique.max_in_flight(artifact.spec)
        options = RunOptions(
            tag=str(artifact.tag),
            http_client=self.http_client,
            max_concurrency=self.max_concurrency if limit is None else min(self.max_concurrency, limit),
            random_state=self.random_state,
            on_retry=self.on_retry,
            rate_limiter=self.rate_limiter,
            backend=self.backend,
            use_cache=self.use_cache,
        )
        return technique(
            artifact.spec,
            label_tokens=artifact.label_tokens,
            model_files=artifact.model_files,
            options=options,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Start what the first request would wait for (a local server, a model)."""
        await self.technique_.prepare()

    async def aclose(self) -> None:
        """Release the backend's and the embedder's connections (a later call reconnects)."""
        technique = self.__dict__.get("technique_")
        if technique is not None:
            await technique.aclose()

    def close(self) -> None:
        run_sync(self.aclose())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- classifying -------------------------------------------------------------------------

    async def aclassify(
        self, texts: Iterable[str], *, on_progress: Callable[[int], None] | None = None
    ) -> list[Prediction]:
        """Classify texts concurrently; raises the first ``BackendError`` that persists after retries.

        ``on_progress(1)`` is called as each text finishes.
        """
        return await _collect(self.technique_.each(texts_of(texts)), on_progress)

    async def aclassify_each(
        self, texts: Iterable[str]
    ) -> AsyncIterator[tuple[int, Prediction | BackendError]]:
        """Yield ``(index, prediction or error)`` as each text finishes, errors included.

        For long jobs: results can be saved as they come, and one failure does not stop the rest.
        """
        texts = texts_of(texts)
        if texts:  # nothing to do: start no backend (e.g. the local model server)
            async for item in self.technique_.each(texts):
                yield item

    async def aclassify_prompts(self, prompts: Iterable[tuple[str | None, str]]) -> list[Prediction]:
        """Classify already rendered ``(system, prompt)`` pairs, e.g. replayed from a fine-tuning file.

        Decoding and scoring follow the artifact; only its template is bypassed.
        """
        return await _collect(self.technique_.replay(list(prompts)))

    def classify(
        self, texts: Iterable[str], *, on_progress: Callable[[int], None] | None = None
    ) -> list[Prediction]:
        """Synchronous ``aclassify``."""
        return self._sync(self.aclassify(texts_of(texts), on_progress=on_progress))

    def classify_prompts(self, prompts: Iterable[tuple[str | None, str]]) -> list[Prediction]:
        """Synchronous ``aclassify_prompts``."""
        return self._sync(self.aclassify_prompts(list(prompts)))

    def _sync(self, work: Coroutine[Any, Any, T]) -> T:
        # Each sync call runs in an event loop of its own, and connections belong to the loop
        # that opened them: release them before the loop ends.
        async def run() -> T:
            try:
                return await work
            finally:
                await self.aclose()

        return run_sync(run())


async def _collect(
    results: AsyncIterator[tuple[int, Prediction | BackendError]],
    on_progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """The predictions in input order, or the first backend error among them."""
    found: dict[int, Prediction | BackendError] = {}
    async for index, outcome in results:
        found[index] = outcome
        if on_progress is not None:
            on_progress(1)
    ordered = [found[i] for i in range(len(found))]
    for outcome in ordered:
        if isinstance(outcome, BackendError):
            raise outcome
    return [p for p in ordered if isinstance(p, Prediction)]
