"""``Classifier``: a loaded artifact with the scikit-learn shape."""

from __future__ import annotations

import asyncio
import functools
import io
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

import httpx
import numpy as np

from ._aio import run_sync
from ._artifact import HEAD_FILE, POOL_EMBEDDINGS, ClassifierArtifact, load_artifact
from ._backends import ClassifierBackend, Completion, CompletionRequest, create_backend
from ._embeddings import Embedder
from ._errors import BackendError, ProbabilitiesUnavailable
from ._head import load_head
from ._ratelimit import RateLimiter
from ._retry import RetryPolicy, call_with_retries
from ._scoring import Prediction, Scorer
from ._spec import Embedding, Example, FewShot
from ._tag import ArtifactTag

__all__ = ["Classifier", "estimate_tokens"]


_EMBEDDING_CHUNK = 256


def estimate_tokens(request: CompletionRequest) -> int:
    """Tokens a request may count against a quota: about 4 characters a token, plus the reply."""
    characters = len(request.prompt) + len(request.system or "")
    return characters // 4 + 4 + request.max_tokens


def _as_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, not a single string: classify(['some text'])")
    return [str(t) for t in texts]


class Classifier:
    """An LLM-based text classifier loaded from an artifact.

    Parameters
    ----------
    artifact : ClassifierArtifact
        The packaged classifier.
    backend : ClassifierBackend, default=None
        Where completions come from; by default the one the artifact's spec names.
    http_client : httpx.AsyncClient, default=None
        Handed to the SDK client of the default backend (tests inject faults through it).
    max_concurrency : int, default=8
        How many requests ``aclassify`` keeps in flight at once.
    random_state : int, default=None
        Seeds the jitter of retry backoff.
    on_retry : callable, default=None
        Called as ``on_retry(error, wait_s)`` before each retry (metrics count them).
    rate_limiter : RateLimiter, default=None
        Waited on before every request (retries included), for requests/tokens-per-minute quotas.

    Examples
    --------
    >>> clf = Classifier.load("yelp-few-shot:latest")          # doctest: +SKIP
    >>> clf.predict(["The food was cold and the waiter was rude."])  # doctest: +SKIP
    array(['1'], dtype=object)
    """

    def __init__(
        self,
        *,
        artifact: ClassifierArtifact,
        backend: ClassifierBackend | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_concurrency: int = 8,
        random_state: int | None = None,
        on_retry: Callable[[BackendError, float], None] | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.artifact = artifact
        self.backend = backend
        self.http_client = http_client
        self.max_concurrency = max_concurrency
        self.random_state = random_state
        self.on_retry = on_retry
        self.rate_limiter = rate_limiter

    @classmethod
    def load(cls, tag: str | ArtifactTag, **params: Any) -> Classifier:
        """Load an artifact from the store (verifying its hash) and wrap it."""
        return cls(artifact=load_artifact(tag), **params)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.artifact.spec.task.labels, dtype=object)

    @property
    def tag_(self) -> ArtifactTag:
        return self.artifact.tag

    @property
    def backend_(self) -> ClassifierBackend:
        if self.backend is None:
            spec = self.artifact.spec
            self.backend = create_backend(
                spec.backend,
                model=spec.model_name,
                scoring=spec.scoring,
                http_client=self.http_client,
            )
        return self.backend

    @functools.cached_property
    def scorer_(self) -> Scorer:
        return Scorer(self.artifact.spec, label_tokens=self.artifact.label_tokens)

    @functools.cached_property
    def embedder_(self) -> Embedder:
        """Embeddings of inputs: the embedding technique's backend, or few-shot ``nearest``'s embedder."""
        technique = self.artifact.spec.technique
        if isinstance(technique, FewShot) and technique.embedder is not None:
            return Embedder.with_default_cache(technique.embedder, http_client=self.http_client)
        return Embedder.with_default_cache(self.artifact.spec.backend, backend=self.backend_)

    @functools.cached_property
    def head_(self) -> Any:
        return load_head(self.artifact.model_files[HEAD_FILE], where=f"artifact {self.tag_}")

    @functools.cached_property
    def _pool(self) -> np.ndarray:
        return np.asarray(np.load(io.BytesIO(self.artifact.model_files[POOL_EMBEDDINGS]), allow_pickle=False))

    async def aclassify(self, texts: Iterable[str]) -> list[Prediction]:
        """Classify texts concurrently (at most ``max_concurrency`` requests in flight).

        Raises the first ``BackendError`` that persists after retries.
        """
        texts = _as_texts(texts)
        if isinstance(self.artifact.spec.technique, Embedding):
            return await self._embedding_predictions(texts)
        return await self._arun(await self._requests(texts))

    async def _requests(self, texts: Iterable[str]) -> list[CompletionRequest | None]:
        """One request per text; ``None`` for an empty text, which is never sent."""
        scorer = self.scorer_
        texts = _as_texts(texts)
        technique = self.artifact.spec.technique
        if not (isinstance(technique, FewShot) and technique.selection == "nearest"):
            return [scorer.request(t) if t.strip() else None for t in texts]
        examples = iter(await self._nearest_examples([t for t in texts if t.strip()]))
        return [scorer.request(t, next(examples)) if t.strip() else None for t in texts]

    async def _nearest_examples(self, texts: list[str]) -> list[list[Example]]:
        """For each text the k most similar pool examples, the most similar last (next to the input)."""
        technique = self.artifact.spec.technique
        assert isinstance(technique, FewShot) and technique.k is not None
        if not texts:
            return []
        similarity = (await self.embedder_.aembed(texts)) @ self._pool.T
        position = np.arange(similarity.shape[1])
        picks = []
        for row in similarity:
            order = np.lexsort((position, -row))[: technique.k]  # ties go to the earlier example
            picks.append([technique.examples[i] for i in order[::-1]])
        return picks

    async def _embedding_predictions(self, texts: list[str]) -> list[Prediction]:
        """Embed the non-empty texts in one go and read the head's probabilities."""
        spec = self.artifact.spec
        technique = spec.technique
        assert isinstance(technique, Embedding)
        started = time.perf_counter()
        predictions = [
            Prediction(label=None, reason="empty text", artifact_tag=str(self.tag_)) for _ in texts
        ]
        filled = [i for i, t in enumerate(texts) if t.strip()]
        if not filled:
            return predictions
        vectors = await self.embedder_.aembed([texts[i][: technique.max_text_chars] for i in filled])
        proba = np.asarray(self.head_.predict_proba(vectors), dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)  # float32 inputs leave sums a hair off 1
        classes = [str(c) for c in self.head_.classes_]
        latency = time.perf_counter() - started
        for row, i in zip(proba, filled, strict=True):
            by_class = dict(zip(classes, map(float, row), strict=True))
            probabilities = {label: by_class.get(label, 0.0) for label in spec.task.labels}
            predictions[i] = Prediction(
                label=max(probabilities, key=probabilities.__getitem__),
                probabilities=probabilities,
                latency_s=latency,
                artifact_tag=str(self.tag_),
                model=spec.model_name,
            )
        return predictions

    async def aclassify_prompts(self, prompts: Iterable[tuple[str | None, str]]) -> list[Prediction]:
        """Classify already rendered ``(system, prompt)`` pairs, e.g. replayed from a fine-tuning file.

        Decoding and scoring follow the artifact; only its template is bypassed.
        """
        scorer = self.scorer_
        return await self._arun([scorer.request_for(p, system=s) if p.strip() else None for s, p in prompts])

    async def _arun(self, requests: list[CompletionRequest | None]) -> list[Prediction]:
        results: list[Prediction | BackendError | None] = [None] * len(requests)
        async for index, outcome in self._each(requests):
            results[index] = outcome
        for result in results:
            if isinstance(result, BackendError):
                raise result
        return [r for r in results if isinstance(r, Prediction)]

    async def _each(
        self, requests: list[CompletionRequest | None]
    ) -> AsyncIterator[tuple[int, Prediction | BackendError]]:
        """``(index, prediction or error)`` as each request finishes; ``None`` is an empty text."""
        semaphore = asyncio.Semaphore(self.max_concurrency)
        rng = random.Random(self.random_state)
        await self.backend_.prepare()

        async def one(index: int, request: CompletionRequest | None) -> tuple[int, Prediction | BackendError]:
            if request is None:
                return index, Prediction(label=None, reason="empty text", artifact_tag=str(self.tag_))
            async with semaphore:
                try:
                    return index, await self._complete(request, rng)
                except BackendError as exc:
                    return index, exc

        # Tasks are created in order, so requests start in input order (as_completed alone
        # would start them in set order).
        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()

    async def _send(self, request: CompletionRequest) -> Completion:
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire(estimate_tokens(request))
        return await self.backend_.complete(request)

    async def aclassify_each(
        self, texts: Iterable[str]
    ) -> AsyncIterator[tuple[int, Prediction | BackendError]]:
        """Yield ``(index, prediction or error)`` as each text finishes, errors included.

        For long jobs: results can be saved as they come, and one failure does not stop the rest.
        """
        texts = _as_texts(texts)
        if not isinstance(self.artifact.spec.technique, Embedding):
            async for item in self._each(await self._requests(texts)):
                yield item
            return
        # In chunks, so that long jobs save results as they come; a failed chunk fails its rows.
        for start in range(0, len(texts), _EMBEDDING_CHUNK):
            chunk = texts[start : start + _EMBEDDING_CHUNK]
            try:
                predictions = await self._embedding_predictions(chunk)
            except BackendError as exc:
                for offset in range(len(chunk)):
                    yield start + offset, exc
                continue
            for offset, prediction in enumerate(predictions):
                yield start + offset, prediction

    async def _complete(self, request: CompletionRequest, rng: random.Random) -> Prediction:
        backend_spec = self.artifact.spec.backend
        policy = RetryPolicy(
            backend_spec.max_retries, backend_spec.backoff_initial_s, backend_spec.backoff_max_s
        )
        started = time.perf_counter()
        completion = await call_with_retries(
            lambda: self._send(request), policy, rng=rng, on_retry=self.on_retry
        )
        latency = time.perf_counter() - started
        outcome = self.scorer_.outcome(completion)
        return Prediction(
            label=outcome.label,
            probabilities=outcome.probabilities,
            reason=outcome.reason,
            raw_output=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=latency,
            artifact_tag=str(self.tag_),
            model=completion.model,
        )

    def classify(self, texts: Iterable[str]) -> list[Prediction]:
        """Synchronous ``aclassify``."""
        return self._sync(self.aclassify(_as_texts(texts)))

    def classify_prompts(self, prompts: Iterable[tuple[str | None, str]]) -> list[Prediction]:
        """Synchronous ``aclassify_prompts``."""
        return self._sync(self.aclassify_prompts(list(prompts)))

    def _sync(self, work: Coroutine[Any, Any, list[Prediction]]) -> list[Prediction]:
        async def run() -> list[Prediction]:
            try:
                return await work
            finally:
                await self.backend_.aclose()
                if "embedder_" in self.__dict__:  # made on first use, for few-shot nearest selection
                    await self.embedder_.aclose()

        return run_sync(run())

    def predict(self, texts: Iterable[str]) -> np.ndarray:
        """Labels, shape (n_samples,); ``None`` where the output could not be read."""
        return np.asarray([p.label for p in self.classify(texts)], dtype=object)

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """Probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        Only for ``scoring: logprobs``; rows whose output could not be read are NaN.
        """
        if self.artifact.spec.scoring != "logprobs" and not isinstance(
            self.artifact.spec.technique, Embedding
        ):
            raise ProbabilitiesUnavailable(
                f"{self.tag_} uses scoring: {self.artifact.spec.scoring}, which gives no "
                "probabilities; package it with scoring: logprobs"
            )
        rows = [
            [p.probabilities[c] for c in self.classes_] if p.probabilities else [np.nan] * len(self.classes_)
            for p in self.classify(texts)
        ]
        return np.asarray(rows, dtype=float).reshape(len(rows), len(self.classes_))

    def __repr__(self) -> str:
        return f"Classifier(artifact={self.artifact!r}, max_concurrency={self.max_concurrency})"
