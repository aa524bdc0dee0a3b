"""``Classifier``: a loaded artifact with the scikit-learn contract and a lifecycle."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..core import LabelwiseError, run_sync
from ._artifact import ClassifierArtifact, load_artifact
from ._errors import BackendError, ProbabilitiesUnavailable
from ._outcomes import Prediction, probability_matrix
from ._ratelimit import RateLimiter
from ._tag import ArtifactTag
from ._techniques import RunOptions, Technique, technique_for, texts_of

__all__ = ["Classifier", "NoLabel"]

T = TypeVar("T")


class NoLabel(LabelwiseError, ValueError):
    """Raised by ``predict`` when a text got no label and no ``abstain_label`` was set."""


class Classifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """An LLM-based text classifier loaded from an artifact.

    A pre-trained scikit-learn classifier: ``get_params``/``set_params``/``clone`` work, ``fit``
    only checks that it is loaded, ``predict`` returns members of ``classes_`` and
    ``predict_proba`` rows sum to 1. Close it when done (``with``/``async with``, ``close()``,
    ``aclose()``): that releases the connections of its backend and embedder.

    Parameters
    ----------
    artifact : ClassifierArtifact, default=None
        The packaged classifier; ``Classifier.load(tag)`` loads and verifies it from the store.
    backend : Backend, default=None
        Where completions (or embeddings) come from; by default the one the spec names.
    http_client : httpx.AsyncClient, default=None
        Handed to the SDK client of the default backend (tests inject faults through it).
    max_concurrency : int, default=8
        How many requests are in flight at once.
    random_state : int, default=None
        Seeds the jitter of retry backoff.
    on_retry : callable, default=None
        Called as ``on_retry(error, wait_s)`` before each retry (metrics count them).
    rate_limiter : RateLimiter, default=None
        Waited on before every request (retries included), for requests/tokens-per-minute quotas.
    abstain_label : str, default=None
        What ``predict`` returns for a text without a label (an abstention, unreadable output,
        an empty text). ``None``: the most probable label where probabilities exist, else
        ``predict`` raises ``NoLabel``. ``classify`` always tells the outcome as it is.

    Examples
    --------
    >>> with Classifier.load("yelp-few-shot:latest", abstain_label="3") as clf:  # doctest: +SKIP
    ...     clf.predict(["The food was cold and the waiter was rude."])
    array(['1'], dtype=object)
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
        rate_limiter: RateLimiter | None = None,
        abstain_label: str | None = None,
    ) -> None:
        self.artifact = artifact
        self.backend = backend
        self.http_client = http_client
        self.max_concurrency = max_concurrency
        self.random_state = random_state
        self.on_retry = on_retry
        self.rate_limiter = rate_limiter
        self.abstain_label = abstain_label

    @classmethod
    def load(cls, tag: str | ArtifactTag, **params: Any) -> Classifier:
        """Load an artifact from the store (verifying its hash) and wrap it."""
        return cls(artifact=load_artifact(tag), **params)

    # -- fitted state ------------------------------------------------------------------------

    @property
    def artifact_(self) -> ClassifierArtifact:
        if self.artifact is None:
            raise LabelwiseError("this Classifier holds no artifact: use Classifier.load(tag)")
        return self.artifact

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.artifact_.spec.task.labels, dtype=object)

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
        )
        return technique(
            artifact.spec,
            label_tokens=artifact.label_tokens,
            model_files=artifact.model_files,
            options=options,
        )

    def __sklearn_is_fitted__(self) -> bool:
        return self.artifact is not None

    def fit(self, X: Any = None, y: Any = None) -> Classifier:  # noqa: N803 (scikit-learn's names)
        """Nothing to learn: the artifact is already fitted. Checks that one is loaded."""
        self.artifact_  # noqa: B018 (raises when there is none)
        return self

    def set_params(self, **params: Any) -> Classifier:
        # The runtime was made from the old parameters: make it again on next use.
        self.__dict__.pop("technique_", None)
        return super().set_params(**params)  # type: ignore[no-any-return]

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

    async def __aenter__(self) -> Classifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Classifier:
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

    def predict(self, X: Iterable[str]) -> np.ndarray:  # noqa: N803 (scikit-learn's names)
        """Labels, shape (n_samples,), each a member of ``classes_`` (see ``abstain_label``)."""
        predictions = self.classify(X)
        labels = [self._label_of(p) for p in predictions]
        missing = [p for p, label in zip(predictions, labels, strict=True) if label is None]
        if missing:
            reasons = sorted({str(p.reason) for p in missing})
            raise NoLabel(
                f"{len(missing)} of {len(labels)} texts got no label ({', '.join(reasons)}); set "
                "abstain_label to the label to give them, or use classify() to see each outcome"
            )
        return np.asarray(labels, dtype=object)

    def _label_of(self, prediction: Prediction) -> str | None:
        if prediction.label is not None:
            return prediction.label
        if self.abstain_label is not None:
            if self.abstain_label not in self.artifact_.spec.task.labels:
                raise LabelwiseError(
                    f"abstain_label {self.abstain_label!r} is not a label of {self.tag_}; "
                    f"labels: {', '.join(self.artifact_.spec.task.labels)}"
                )
            return self.abstain_label
        if prediction.probabilities:
            return max(prediction.probabilities, key=prediction.probabilities.__getitem__)
        return None

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:  # noqa: N803 (scikit-learn's names)
        """Probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        For techniques and scoring modes that give probabilities. A text without any (an empty
        text, an answer with no label token) gets the uniform row: nothing is known about it.
        """
        spec = self.artifact_.spec
        if not technique_for(spec).gives_probabilities(spec):
            raise ProbabilitiesUnavailable(
                f"{self.tag_} uses scoring: {spec.scoring}, which gives no probabilities; "
                "package it with scoring: logprobs"
            )
        predictions = self.classify(X)
        proba = probability_matrix([p.probabilities for p in predictions], list(self.classes_))
        proba[np.isnan(proba).any(axis=1)] = 1.0 / len(self.classes_)
        return proba.reshape(len(predictions), len(self.classes_))


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
