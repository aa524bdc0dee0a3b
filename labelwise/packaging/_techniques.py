"""Techniques: the one place where a technique kind maps to what it does.

``TECHNIQUES`` maps each ``technique.kind`` of a spec to a ``Technique`` class. A technique
knows what packaging must store for it (canonical content files, measured model files, label
tokens) and how a loaded artifact classifies texts:

- ``PromptTechnique`` (zero_shot, fine_tuned): render a prompt, complete it, score the answer;
- ``FewShotTechnique`` (few_shot): the same with examples, fixed or nearest to each input;
- ``EmbeddingTechnique`` (embedding): embed the text and read the scikit-learn head;
- ``EncoderTechnique`` (local_fine_tuned): run the encoder fine-tuned here, weights and head.

Nothing outside this module branches on the technique's type.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
import numpy as np

from ..backends import (
    ENCODER_FILES,
    Backend,
    BackendError,
    BackendSpec,
    Completion,
    CompletionBackend,
    CompletionRequest,
    Embedder,
    EmbeddingBackend,
    EncoderFormat,
    LabelToken,
    Limiter,
    RetryPolicy,
    backend_class,
    call_with_retries,
    completion_backend,
    encoder_predictor,
    openai_encoding,
)
from ..core import SpecError, text_key
from ._errors import ArtifactError
from ._head import HEAD_FILE, load_head
from ._outcomes import Prediction
from ._prompts import Template, render_examples
from ._scoring import Scorer, check_label_tokens
from ._spec import ClassifierSpec, Embedding, Example, FewShot, FineTuned, LocalFineTuned, ZeroShot

__all__ = [
    "MODEL_FILES",
    "POOL_EMBEDDINGS",
    "TRAINING_TEXTS",
    "TECHNIQUES",
    "EmbeddingTechnique",
    "EncoderTechnique",
    "FewShotTechnique",
    "ModelTechnique",
    "PromptTechnique",
    "RunOptions",
    "Technique",
    "count_prompt_tokens",
    "count_tokens",
    "estimate_tokens",
    "prompt_scorer",
    "technique_for",
]

POOL_EMBEDDINGS = "pool_embeddings.npy"
TRAINING_TEXTS = "training_texts.sha256"  # one text_key per line: what a head was fitted on
MODEL_FILES = (HEAD_FILE, POOL_EMBEDDINGS, TRAINING_TEXTS, *ENCODER_FILES)
EXAMPLES_FILE = "examples.jsonl"
_EMBEDDING_CHUNK = 256

Result = tuple[int, Prediction | BackendError]


def estimate_tokens(request: CompletionRequest) -> int:
    """Tokens a request may count against a quota: about 4 characters a token, plus the reply."""
    characters = len(request.prompt) + len(request.system or "")
    return characters // 4 + 4 + request.max_tokens


def count_tokens(spec: ClassifierSpec, texts: Sequence[str]) -> tuple[list[int], str]:
    """Each text's tokens for ``spec``'s model, and how they were counted (for spend estimates).

    OpenAI's own tokenizer where the backend uses it (offline with the ``offline`` extra);
    elsewhere about 4 characters a token.
    """
    if spec.backend.backend.openai_tokenizer:
        encoding = openai_encoding(spec.model_name)
        return [len(encoding.encode(text)) for text in texts], "tiktoken"
    return [max(1, len(text) // 4) for text in texts], "about 4 characters a token"


def count_prompt_tokens(spec: ClassifierSpec, requests: Sequence[CompletionRequest]) -> tuple[list[int], str]:
    """Each request's prompt tokens (``count_tokens``), with the chat format's few tokens a message."""
    counts, counted_with = count_tokens(spec, [r.prompt + (r.system or "") for r in requests])
    return [count + 7 for count in counts], counted_with


@dataclass(frozen=True)
class RunOptions:
    """How a loaded classifier runs, whatever its technique (the ``Classifier``'s parameters)."""

    tag: str
    http_client: httpx.AsyncClient | None = None
    max_concurrency: int = 8
    random_state: int | None = None
    on_retry: Callable[[BackendError, float], None] | None = None
    rate_limiter: Limiter | None = None
    backend: Backend | None = None
    """An injected backend instead of the one the spec names (tests, custom providers)."""
    use_cache: bool = True
    """Embeddings from the persistent cache where it has them; ``False``: always from the backend."""


_Spec = TypeVar("_Spec", ZeroShot, FewShot, FineTuned, Embedding, LocalFineTuned)


def _narrow(spec: ClassifierSpec, kind: type[_Spec]) -> _Spec:
    """The spec's technique as the spec model its behaviour class is registered for."""
    technique = spec.technique
    if not isinstance(technique, kind):
        raise SpecError(f"technique {technique.kind} is not {kind.__name__}")
    return technique


class Technique(ABC):
    """How one technique kind is packaged and how it classifies. Subclasses implement ``each``."""

    batches_across_requests: ClassVar[bool] = False
    """Many texts cost about as much as one (embeddings): the service batches requests together."""

    def __init__(
        self,
        spec: ClassifierSpec,
        *,
        label_tokens: Mapping[str, LabelToken] | None,
        model_files: Mapping[str, bytes],
        options: RunOptions,
    ) -> None:
        self.spec = spec
        self.label_tokens = label_tokens
        self.model_files = model_files
        self.options = options

    # -- packaging -------------------------------------------------------------------------

    @classmethod
    def split_spec(cls, spec: ClassifierSpec) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The spec as stored in ``spec.json``, and content files stored beside it."""
        return spec.model_dump(mode="json", exclude_none=True), {}

    @classmethod
    def join_spec(cls, stored: dict[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
        """The inverse of ``split_spec``: the spec document with its side files put back."""
        return stored

    @classmethod
    def model_files_for(cls, spec: ClassifierSpec, given: Mapping[str, bytes]) -> dict[str, bytes]:
        """Binary content the technique needs, from training (``given``) or measured now."""
        return dict(given)

    @classmethod
    async def measure_label_tokens(cls, spec: ClassifierSpec) -> dict[str, LabelToken] | None:
        """Each label's first token, for logprobs scoring; ``None`` when not needed."""
        return None

    @classmethod
    def seen_text_keys(cls, spec: ClassifierSpec, model_files: Mapping[str, bytes]) -> set[str]:
        """``text_key`` of every text the artifact was built from (examples, training rows):
        measuring it on them would flatter it."""
        return set()

    @classmethod
    def backends(cls, spec: ClassifierSpec) -> list[BackendSpec]:
        """The backends a served artifact calls (for what a deployment must install)."""
        return [spec.backend]

    @classmethod
    def serving_extras(cls, spec: ClassifierSpec) -> list[str]:
        """The ``labelwise`` extras that serving this spec needs beyond the core."""
        extras = {extra for b in cls.backends(spec) for extra in backend_class(b.provider).extras_for(b)}
        return sorted(extras)

    @classmethod
    def max_in_flight(cls, spec: ClassifierSpec) -> int | None:
        """The most requests this spec's backends serve at once, if any of them is limited."""
        limits = [
            limit
            for backend in cls.backends(spec)
            if (limit := backend_class(backend.provider).max_in_flight)
        ]
        return min(limits) if limits else None

    @classmethod
    def gives_probabilities(cls, spec: ClassifierSpec) -> bool:
        """Whether predictions carry a distribution over the labels."""
        return spec.scoring == "logprobs"

    @classmethod
    def input_embedder(cls, spec: ClassifierSpec) -> BackendSpec | None:
        """Where embeddings of inputs come from, if the technique embeds them (embedding drift)."""
        return None

    @classmethod
    def uncalibrated_because(cls, spec: ClassifierSpec) -> str | None:
        """Why its probabilities should not be read as chances of being right; ``None``: they can be."""
        if not cls.gives_probabilities(spec):
            return f"scoring {spec.scoring} gives no probabilities (logprobs scoring does)"
        if spec.calibration is None or spec.calibration.method == "none":
            return "its probabilities are not calibrated on held-out data"
        return None

    @classmethod
    def prompt_variants(cls, spec: ClassifierSpec) -> dict[str, ClassifierSpec]:
        """Specs whose prompts say the same in another order (robustness probes)."""
        return {}

    # -- classifying -----------------------------------------------------------------------

    @property
    def tag(self) -> str:
        return self.options.tag

    async def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Start what the first request would otherwise wait for (a server, a model)."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; the technique reconnects on its next call."""

    @abstractmethod
    def each(self, texts: list[str]) -> AsyncIterator[Result]:
        """Yield ``(index, prediction or error)`` as each text finishes."""

    @property
    def scorer(self) -> Scorer | None:
        """How prompts are rendered and answers read; ``None`` for techniques without a prompt."""
        return None

    @property
    def texts_embedded(self) -> int:
        """Texts this technique sent to its embedding backend (not found in the cache) so far."""
        return 0

    async def requests(self, texts: Sequence[str]) -> list[CompletionRequest]:
        """The completion requests the texts would send (cost estimates); none by default."""
        return []

    def replay(self, prompts: Sequence[tuple[str | None, str]]) -> AsyncIterator[Result]:
        """Classify already rendered ``(system, prompt)`` pairs (a fine-tuning file)."""
        raise SpecError(f"technique {self.spec.technique.kind} renders no prompts, so it cannot replay them")


class PromptTechnique(Technique):
    """Zero-shot and fine-tuned: one rendered prompt per text, completed and scored."""

    @functools.cached_property
    def backend(self) -> CompletionBackend:
        injected = self.options.backend
        if injected is not None:
            if not isinstance(injected, CompletionBackend):
                raise SpecError(
                    f"technique {self.spec.technique.kind} needs a backend that completes prompts"
                )
            return injected
        spec = self.spec
        return completion_backend(
            spec.backend, model=spec.model_name, scoring=spec.scoring, http_client=self.options.http_client
        )

    @functools.cached_property
    def scorer(self) -> Scorer:
        template = self.spec.technique.prompt_template
        assert template is not None  # every prompt technique has one
        return Scorer(
            self.spec,
            template=template,
            system=getattr(self.spec.technique, "system", None),
            label_tokens=self.label_tokens,
            fixed=self._fixed_values(),
        )

    def _fixed_values(self) -> dict[str, str]:
        return {}

    async def _values(self, texts: list[str]) -> list[dict[str, str] | None]:
        """Per-input template values (none by default)."""
        return [None] * len(texts)

    @classmethod
    async def measure_label_tokens(cls, spec: ClassifierSpec) -> dict[str, LabelToken] | None:
        if spec.scoring != "logprobs":
            return None
        backend = completion_backend(spec.backend, model=spec.model_name, scoring=spec.scoring)
        try:
            tokens = await _label_forms(backend, spec)
        finally:
            await backend.aclose()
        if tokens is None:
            raise SpecError(
                f"provider {spec.backend.provider} cannot tokenize labels, so scoring: logprobs cannot "
                "be checked for it; use scoring: generate or json_schema"
            )
        return check_label_tokens(tokens)

    async def prepare(self) -> None:
        await self.backend.prepare()

    async def aclose(self) -> None:
        if "backend" in self.__dict__:
            await self.backend.aclose()

    async def _requests(self, texts: list[str]) -> list[CompletionRequest | None]:
        """One request per text; ``None`` for an empty text, which is never sent."""
        filled = [t for t in texts if t.strip()]
        values = iter(await self._values(filled))
        return [self.scorer.request(t, next(values)) if t.strip() else None for t in texts]

    async def requests(self, texts: Sequence[str]) -> list[CompletionRequest]:
        return [r for r in await self._requests(list(texts)) if r is not None]

    async def each(self, texts: list[str]) -> AsyncIterator[Result]:
        async for item in self._run(await self._requests(texts)):
            yield item

    def replay(self, prompts: Sequence[tuple[str | None, str]]) -> AsyncIterator[Result]:
        scorer = self.scorer
        return self._run([scorer.request_for(p, system=s) if p.strip() else None for s, p in prompts])

    async def _run(self, requests: list[CompletionRequest | None]) -> AsyncIterator[Result]:
        """Send the requests, at most ``max_concurrency`` at once, yielding each as it finishes."""
        semaphore = asyncio.Semaphore(self.options.max_concurrency)
        rng = random.Random(self.options.random_state)
        await self.backend.prepare()

        async def one(index: int, request: CompletionRequest | None) -> Result:
            if request is None:
                return index, Prediction.of_empty_text(self.tag)
            async with semaphore:
                try:
                    return index, await self._complete(request, rng)
                except BackendError as exc:
                    return index, exc

        if len(requests) == 1:  # one text (a service request): no tasks to schedule and gather
            yield await one(0, requests[0])
            return
        # Tasks are created in order, so requests start in input order (as_completed alone
        # would start them in set order).
        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for task in tasks:
                task.cancel()

    async def _send(self, request: CompletionRequest) -> Any:
        limiter = self.options.rate_limiter
        if limiter is None:
            return await self.backend.complete(request)
        await limiter.acquire(estimate_tokens(request))
        try:
            return await self.backend.complete(request)
        except BackendError as exc:
            if exc.retry_after:  # the provider's quota is shared: nobody sends until it says
                limiter.hold(exc.retry_after)
            raise

    @functools.cached_property
    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy.of(self.spec.backend)

    async def _complete(self, request: CompletionRequest, rng: random.Random) -> Prediction:
        started = time.perf_counter()
        completion = await call_with_retries(
            lambda: self._send(request), self._retry_policy, rng=rng, on_retry=self.options.on_retry
        )
        return self.prediction(completion, latency_s=time.perf_counter() - started)

    def prediction(self, completion: Completion, *, latency_s: float) -> Prediction:
        """The prediction a completion of one of this technique's requests makes."""
        outcome = self.scorer.outcome(completion)
        return Prediction(
            label=outcome.label,
            probabilities=outcome.probabilities,
            reason=outcome.reason,
            message=outcome.message,
            raw_output=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_s=latency_s,
            artifact_tag=self.tag,
            model=completion.model,
            system_fingerprint=completion.system_fingerprint,
        )


class FewShotTechnique(PromptTechnique):
    """A prompt with labelled examples: all of them in order, or the k nearest to each input."""

    @classmethod
    def seen_text_keys(cls, spec: ClassifierSpec, model_files: Mapping[str, bytes]) -> set[str]:
        return {text_key(example.text) for example in _narrow(spec, FewShot).examples}

    @property
    def technique(self) -> FewShot:
        return _narrow(self.spec, FewShot)

    @classmethod
    def split_spec(cls, spec: ClassifierSpec) -> tuple[dict[str, Any], dict[str, bytes]]:
        stored = spec.model_dump(mode="json", exclude={"technique": {"examples"}}, exclude_none=True)
        examples: list[Example] = _narrow(spec, FewShot).examples
        lines = "".join(
            json.dumps(e.model_dump(), sort_keys=True, ensure_ascii=False) + "\n" for e in examples
        )
        return stored, {EXAMPLES_FILE: lines.encode()}

    @classmethod
    def join_spec(cls, stored: dict[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
        lines = files.get(EXAMPLES_FILE, b"").decode().splitlines()
        stored["technique"]["examples"] = [json.loads(line) for line in lines if line]
        return stored

    @classmethod
    def model_files_for(cls, spec: ClassifierSpec, given: Mapping[str, bytes]) -> dict[str, bytes]:
        files = dict(given)
        technique = _narrow(spec, FewShot)
        if technique.selection == "nearest" and technique.embedder is not None:
            # The pool's embeddings, computed once at packaging so every load chooses alike.
            embedder = Embedder.with_default_cache(technique.embedder)
            vectors = embedder.embed([e.text for e in technique.examples])
            buffer = io.BytesIO()
            np.save(buffer, vectors.astype(np.float32), allow_pickle=False)
            files[POOL_EMBEDDINGS] = buffer.getvalue()
        return files

    @classmethod
    def backends(cls, spec: ClassifierSpec) -> list[BackendSpec]:
        embedder = _narrow(spec, FewShot).embedder
        return [spec.backend] + ([embedder] if embedder is not None else [])

    @classmethod
    def prompt_variants(cls, spec: ClassifierSpec) -> dict[str, ClassifierSpec]:
        technique = _narrow(spec, FewShot)
        # Under nearest selection the chosen examples are ordered by similarity, not by the pool.
        if technique.selection != "fixed" or len({(e.text, e.label) for e in technique.examples}) < 2:
            return {}
        reordered = technique.model_copy(update={"examples": technique.examples[::-1]})
        return {"example_order": spec.model_copy(update={"technique": reordered})}

    def _render(self, examples: Sequence[Example]) -> str:
        technique = self.technique
        return render_examples(
            examples,
            Template(technique.example_template),
            separator=technique.example_separator,
            max_chars=technique.max_text_chars,
        )

    def _fixed_values(self) -> dict[str, str]:
        if self.technique.selection == "nearest":
            return {}
        return {"examples": self._render(self.technique.examples)}

    @functools.cached_property
    def embedder(self) -> Embedder:
        assert self.technique.embedder is not None  # checked by the spec for nearest selection
        return Embedder.with_default_cache(self.technique.embedder, http_client=self.options.http_client)

    @functools.cached_property
    def _pool(self) -> np.ndarray:
        data = self.model_files[POOL_EMBEDDINGS]
        return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))

    async def _values(self, texts: list[str]) -> list[dict[str, str] | None]:
        if self.technique.selection != "nearest" or not texts:
            return [None] * len(texts)
        k = self.technique.k
        assert k is not None
        similarity = (await self.embedder.aembed(texts)) @ self._pool.T
        position = np.arange(similarity.shape[1])
        values: list[dict[str, str] | None] = []
        for row in similarity:
            order = np.lexsort((position, -row))[:k]  # ties go to the earlier example
            # The most similar example goes last, next to the input.
            values.append({"examples": self._render([self.technique.examples[i] for i in order[::-1]])})
        return values

    async def aclose(self) -> None:
        await super().aclose()
        if "embedder" in self.__dict__:
            await self.embedder.aclose()


class ModelTechnique(Technique):
    """A model read here gives each text's probabilities (``probabilities``), many texts at once."""

    batches_across_requests = True

    @classmethod
    def seen_text_keys(cls, spec: ClassifierSpec, model_files: Mapping[str, bytes]) -> set[str]:
        return set(model_files.get(TRAINING_TEXTS, b"").decode().split())

    @classmethod
    def gives_probabilities(cls, spec: ClassifierSpec) -> bool:
        return True

    @abstractmethod
    async def probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """An (n, classes) array of probabilities for non-empty texts, and the classes' labels."""

    async def each(self, texts: list[str]) -> AsyncIterator[Result]:
        # In chunks, so that long jobs save results as they come; a failed chunk fails its rows.
        spec = self.spec
        limit = spec.technique.max_text_chars
        for start in range(0, len(texts), _EMBEDDING_CHUNK):
            chunk = texts[start : start + _EMBEDDING_CHUNK]
            started = time.perf_counter()
            predictions = [Prediction.of_empty_text(self.tag) for _ in chunk]
            filled = [i for i, t in enumerate(chunk) if t.strip()]
            try:
                proba, classes = (
                    await self.probabilities([chunk[i][:limit] for i in filled])
                    if filled
                    else (np.zeros(0), [])
                )
            except BackendError as exc:
                for offset in range(len(chunk)):
                    yield start + offset, exc
                continue
            latency = time.perf_counter() - started
            for row, i in zip(proba, filled, strict=True):
                by_class = dict(zip(classes, map(float, row), strict=True))
                probabilities = {label: by_class.get(label, 0.0) for label in spec.task.labels}
                predictions[i] = Prediction(
                    label=max(probabilities, key=probabilities.__getitem__),
                    probabilities=probabilities,
                    latency_s=latency,
                    artifact_tag=self.tag,
                    model=spec.model_name,
                )
            for offset, prediction in enumerate(predictions):
                yield start + offset, prediction


class EmbeddingTechnique(ModelTechnique):
    """Embeddings of the text and a scikit-learn head reading them."""

    @classmethod
    def model_files_for(cls, spec: ClassifierSpec, given: Mapping[str, bytes]) -> dict[str, bytes]:
        if HEAD_FILE not in given:
            raise ArtifactError(
                "technique embedding needs its fitted head: `labelwise train-embedding` fits and packages it"
            )
        return dict(given)

    @classmethod
    def input_embedder(cls, spec: ClassifierSpec) -> BackendSpec:
        return spec.backend

    @functools.cached_property
    def embedder(self) -> Embedder:
        backend = self.options.backend
        if backend is not None and not isinstance(backend, EmbeddingBackend):
            raise SpecError("technique embedding needs a backend that embeds texts")
        if not self.options.use_cache:
            return Embedder(self.spec.backend, http_client=self.options.http_client, backend=backend)
        return Embedder.with_default_cache(
            self.spec.backend, http_client=self.options.http_client, backend=backend
        )

    @functools.cached_property
    def head(self) -> Any:

        return load_head(self.model_files[HEAD_FILE], where=f"artifact {self.tag}")

    async def prepare(self) -> None:
        await self.embedder.backend.prepare()
        await asyncio.to_thread(lambda: self.head)  # load and check the head before traffic

    async def aclose(self) -> None:
        if "embedder" in self.__dict__:
            await self.embedder.aclose()

    @property
    def texts_embedded(self) -> int:
        return self.embedder.embedded

    async def probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Embed the texts in one go and read the head's probabilities, and the head's classes."""
        vectors = await self.embedder.aembed(texts)
        proba = np.asarray(self.head.predict_proba(vectors), dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)  # float32 inputs leave sums a hair off 1
        return proba, [str(c) for c in self.head.classes_]


class EncoderTechnique(ModelTechnique):
    """An encoder fine-tuned here: its weights, pooling and linear head, from the artifact's files."""

    @classmethod
    def model_files_for(cls, spec: ClassifierSpec, given: Mapping[str, bytes]) -> dict[str, bytes]:
        missing = [name for name in ENCODER_FILES if name not in given]
        if missing:
            raise ArtifactError(
                f"technique local_fine_tuned needs its weights ({', '.join(missing)} missing): "
                "`labelwise finetune start DATA --local` trains and packages them"
            )
        return dict(given)

    @classmethod
    def serving_extras(cls, spec: ClassifierSpec) -> list[str]:
        # The weights travel in the artifact: no base model package, no sentence-transformers.
        return ["encoder", "onnx"] if spec.backend.runtime == "onnx_int8" else ["encoder"]

    @functools.cached_property
    def predictor(self) -> Any:
        spec = self.spec
        form = EncoderFormat(
            n_labels=len(spec.task.labels),
            normalize=_narrow(spec, LocalFineTuned).normalize,
            max_tokens=spec.backend.max_tokens or 512,
        )
        return encoder_predictor(self.model_files, form, spec.backend.runtime or "torch")

    async def prepare(self) -> None:
        await asyncio.to_thread(lambda: self.predictor)  # load (or export to ONNX) before traffic

    async def probabilities(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        proba = await asyncio.to_thread(self.predictor.predict_proba, texts)
        return proba, list(self.spec.task.labels)


TECHNIQUES: dict[str, type[Technique]] = {
    "zero_shot": PromptTechnique,
    "few_shot": FewShotTechnique,
    "fine_tuned": PromptTechnique,
    "embedding": EmbeddingTechnique,
    "local_fine_tuned": EncoderTechnique,
}


def technique_for(spec: ClassifierSpec) -> type[Technique]:
    """The technique class of ``spec.technique.kind``."""
    return TECHNIQUES[spec.technique.kind]


def prompt_scorer(spec: ClassifierSpec, *, label_tokens: Mapping[str, LabelToken] | None = None) -> Scorer:
    """The scorer of a prompt technique's spec, without an artifact (fine-tuning files, tests)."""
    options = RunOptions(tag=spec.name)
    technique = technique_for(spec)(spec, label_tokens=label_tokens, model_files={}, options=options)
    if technique.scorer is None:
        raise SpecError(f"technique {spec.technique.kind} renders no prompts")
    return technique.scorer


def texts_of(texts: Iterable[str]) -> list[str]:
    """Texts as a list of strings; a single string is refused (it would be split into characters)."""
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, not a single string: classify(['some text'])")
    return [str(t) for t in texts]


async def _label_forms(
    backend: CompletionBackend, spec: ClassifierSpec
) -> dict[str, list[LabelToken]] | None:
    """Each label's tokens in the form the model writes it.

    A completion continues the prompt, and BPE and SentencePiece models write the space before a
    word inside the word's token (" positive"), so after "Sentiment: " the bare labels are
    improbable and the model ranks digits first. Where every label's space-led form starts with
    a word token, those tokens are recorded and the scorer moves a prompt's trailing spaces into
    the label (``Scorer.request_for``). Labels such as digits, whose space is a token of its own,
    keep their bare form and the prompt its space. Chat answers start a new message: bare form.
    """
    labels = spec.task.labels
    if spec.backend.api_kind == "completions":
        spaced = await backend.label_tokens([" " + label for label in labels])
        if spaced is not None and all(spaced[" " + label] and spaced[" " + label][0].piece.strip()
                                      for label in labels):  # fmt: skip
            return {label: spaced[" " + label] for label in labels}
    return await backend.label_tokens(labels)
