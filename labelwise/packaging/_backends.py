"""Backends: how a prompt or a text reaches a model.

Two protocols, each with one abstract method: a ``CompletionBackend`` completes prompts
(``complete``), an ``EmbeddingBackend`` embeds texts (``embed``). The OpenAI-shaped providers
are both, through the ``openai`` SDK, and differ only in how they build their ``AsyncOpenAI``
client; sentence-transformers only embeds. All register in ``BACKENDS`` exactly as a
third-party backend would, and ``completion_backend``/``embedding_backend`` refuse a provider
that does not speak the protocol asked for.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from ._errors import (
    BackendAuthError,
    BackendBadRequest,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BackendUnreachable,
    MalformedResponse,
    RateLimited,
    SpecError,
)
from ._spec import BackendSpec, ScoringMode
from ._tokenizers import openai_encoding

__all__ = [
    "BACKENDS",
    "backend_class",
    "AzureOpenAIBackend",
    "Backend",
    "Completion",
    "CompletionBackend",
    "CompletionRequest",
    "EmbeddingBackend",
    "LabelToken",
    "OpenAIBackend",
    "OpenAICompatibleBackend",
    "completion_backend",
    "embedding_backend",
    "error_for_status",
    "register_backend",
    "translate_provider_errors",
]


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One prompt and the decoding settings to complete it with."""

    prompt: str
    system: str | None = None
    max_tokens: int = 8
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: Sequence[str] = ()
    top_logprobs: int | None = None
    """Ask for this many alternatives of the first generated token."""
    logit_bias: dict[int, float] | None = None
    label_enum: Sequence[str] | None = None
    """Constrain the output to the JSON object ``{"label": <one of these>}``."""


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    top_logprobs: list[tuple[str, float]] | None = None
    """Alternatives for the first generated token, as (token text, log probability)."""
    system_fingerprint: str | None = None
    """The provider's name for the configuration that answered (changes when the model behind a name does)."""


@dataclass(frozen=True, slots=True)
class LabelToken:
    """The first token of a label as the model's tokenizer writes it."""

    token_id: int
    piece: str


class Backend(ABC):  # noqa: B024 (the protocols below each add their one abstract method)
    """What every backend shares: its spec, model, optional injected HTTP client and lifecycle."""

    backend_id: ClassVar[str]
    extras: ClassVar[tuple[str, ...]] = ()
    """The ``labelwise`` extras a deployment must install to use this backend."""
    batch_price_factor: ClassVar[float | None] = None
    """The price of the provider's Batch API against one request per text; ``None``: it has none."""
    max_in_flight: ClassVar[int | None] = None
    """Requests the backend serves at once, where that is known and small. More would wait in
    the server's queue with their timeouts running, so clients never send more."""

    @classmethod
    def extras_for(cls, spec: BackendSpec) -> tuple[str, ...]:
        """The extras a deployment of this backend, configured as ``spec``, must install."""
        return cls.extras

    def __init__(
        self,
        spec: BackendSpec,
        *,
        model: str,
        scoring: ScoringMode = "generate",
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.spec = spec
        self.model = model
        self.scoring = scoring
        self.http_client = http_client

    async def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Get ready to serve (connect, start a server, load a model) so the first call is not slower."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook, nothing to release by default)
        """Release connections. The backend stays usable: a later call reconnects."""


class CompletionBackend(Backend):
    """A model that completes prompts. Subclasses implement ``complete``."""

    @abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Send one request to the model; raise a ``BackendError`` subclass on failure."""

    async def label_tokens(self, labels: Sequence[str]) -> dict[str, list[LabelToken]] | None:
        """Each label's tokens, for logprobs scoring; ``None`` when this backend cannot tokenize."""
        return None


class EmbeddingBackend(Backend):
    """A model that embeds texts. Subclasses implement ``embed``."""

    @abstractmethod
    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One embedding per text; raise a ``BackendError`` subclass on failure."""


BACKENDS: dict[str, type[Backend]] = {}

B = TypeVar("B", bound=Backend)


def register_backend(cls: type[B]) -> type[B]:
    """Class decorator: make ``cls`` the backend for ``provider: <cls.backend_id>``."""
    BACKENDS[cls.backend_id] = cls
    return cls


def backend_class(provider: str) -> type[Backend]:
    """The backend registered for ``provider``, the built-in ones included."""
    # The local and sentence-transformers backends register when their modules load, and
    # nothing else may have loaded them yet (the package imports its modules on first use).
    from . import _embeddings, _local  # noqa: F401

    try:
        return BACKENDS[provider]
    except KeyError:
        raise SpecError(
            f"no backend registered for provider {provider!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None


def _create(protocol: type[B], what: str, spec: BackendSpec, model: str, **options: Any) -> B:
    backend_cls = backend_class(spec.provider)
    if not issubclass(backend_cls, protocol):
        able = sorted(name for name, cls in BACKENDS.items() if issubclass(cls, protocol))
        raise SpecError(f"provider {spec.provider} gives no {what}; providers that do: {', '.join(able)}")
    return backend_cls(spec, model=model, **options)


def completion_backend(
    spec: BackendSpec,
    *,
    model: str,
    scoring: ScoringMode = "generate",
    http_client: httpx.AsyncClient | None = None,
) -> CompletionBackend:
    """The registered completion backend for ``spec.provider``."""
    return _create(CompletionBackend, "completions", spec, model, scoring=scoring, http_client=http_client)  # type: ignore[type-abstract]


def embedding_backend(
    spec: BackendSpec, *, model: str, http_client: httpx.AsyncClient | None = None
) -> EmbeddingBackend:
    """The registered embedding backend for ``spec.provider``."""
    return _create(EmbeddingBackend, "embeddings", spec, model, http_client=http_client)  # type: ignore[type-abstract]


def _retry_after(response: httpx.Response | None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if response is None:
        return None
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_for_status(
    provider: str, status: int, message: str, *, retry_after: float | None = None
) -> BackendError:
    """The labelwise error for an HTTP error status from a provider, live or in a Batch API file."""
    if status == 429:
        hint = f"; retry after {retry_after:.1f} s" if retry_after is not None else ""
        return RateLimited(f"{provider} rate limited the request (HTTP 429){hint}", retry_after=retry_after)
    if status in (401, 403):
        return BackendAuthError(
            f"{provider} refused the credentials (HTTP {status}): check the API key "
            "in the environment variable named by backend.api_key_env"
        )
    if status == 408:
        return BackendTimeout(f"{provider} timed out the request (HTTP 408)")
    if status >= 500:
        return BackendUnavailable(f"{provider} failed with HTTP {status}: {message}")
    return BackendBadRequest(f"{provider} rejected the request (HTTP {status}): {message}")


@contextmanager
def translate_provider_errors(provider: str) -> Iterator[None]:
    """Turn ``openai`` SDK exceptions into labelwise ``BackendError``\\ s (the one boundary)."""
    try:
        yield
    except openai.RateLimitError as exc:
        raise error_for_status(provider, 429, exc.message, retry_after=_retry_after(exc.response)) from exc
    except openai.APITimeoutError as exc:
        raise BackendTimeout(f"{provider} did not answer within the timeout") from exc
    except openai.APIConnectionError as exc:
        raise BackendUnreachable(f"cannot reach {provider}: {exc.__cause__ or exc}") from exc
    except openai.APIResponseValidationError as exc:
        raise MalformedResponse(f"{provider} answered with a body that cannot be read: {exc}") from exc
    except openai.APIStatusError as exc:
        raise error_for_status(provider, exc.status_code, exc.message) from exc
    except openai.OpenAIError as exc:
        raise BackendError(f"{provider} call failed: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{provider} answered with a body that is not JSON") from exc


class OpenAIBackend(CompletionBackend, EmbeddingBackend):
    """OpenAI's API. Subclasses change only how the client is made."""

    backend_id = "openai"
    batch_price_factor: ClassVar[float | None] = 0.5
    batch_url_prefix: ClassVar[str] = "/v1"
    """What precedes ``/chat/completions`` in a Batch API request line's ``url``."""
    # How the provider takes a JSON schema: OpenAI's json_schema response format, or
    # llama.cpp's {"type": "json_object", "schema": ...} and GBNF grammars.
    json_schema_style: ClassVar[str] = "openai"
    # Made on first use, per event loop (see _get_client).
    _client: openai.AsyncOpenAI | None = None
    _client_loop: asyncio.AbstractEventLoop | None = None

    def _api_key(self) -> str:
        name = self.spec.key_env
        key = os.environ.get(name) if name else None
        if key:
            return key
        if self.spec.provider in ("openai", "azure_openai"):
            raise BackendAuthError(
                f"no API key: set the environment variable {name} (named by backend.api_key_env)"
            )
        return "unused"  # the SDK insists on a key; keyless servers ignore it

    def _client_options(self) -> dict[str, Any]:
        # Retries are ours (call_with_retries), so the SDK must not retry as well.
        return {"timeout": self.spec.timeout_s, "max_retries": 0, "http_client": self.http_client}

    async def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key(), base_url=self.spec.base_url, **self._client_options()
        )

    async def prepare(self) -> None:
        await self._get_client()

    async def _get_client(self) -> openai.AsyncOpenAI:
        # An httpx pool belongs to the event loop that opened it; `classify` may run each call
        # in a new loop, so a client is made per loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = await self._make_client()
            self._client_loop = loop
        return self._client

    async def sdk_client(self) -> openai.AsyncOpenAI:
        """The SDK client this backend calls through (the Batch API uses it for files and batches)."""
        return await self._get_client()

    @property
    def endpoint(self) -> str:
        """Where requests go, under the API's root: ``chat/completions`` or ``completions``."""
        return "chat/completions" if self.spec.api_kind == "chat" else "completions"

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The JSON body that asks ``endpoint`` for ``request``."""
        if self.endpoint == "chat/completions":
            messages: list[ChatCompletionMessageParam] = []
            if request.system:
                messages.append({"role": "system", "content": request.system})
            messages.append({"role": "user", "content": request.prompt})
            return {"model": self.model, "messages": messages, **self._chat_params(request)}
        prompt = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        return {"model": self.model, "prompt": prompt, **self._completion_params(request)}

    def read_completion(self, body: dict[str, Any]) -> Completion:
        """A ``Completion`` from a JSON answer to ``request_body`` (a Batch API output line)."""
        from openai.types import Completion as TextCompletion
        from openai.types.chat import ChatCompletion

        chat = self.endpoint == "chat/completions"
        try:
            response = (ChatCompletion if chat else TextCompletion).model_validate(body)
        except ValueError as exc:
            raise MalformedResponse(f"{self.spec.provider} answered with an unexpected body: {exc}") from exc
        return _read_response(response, self.spec.provider, chat=chat)

    async def complete(self, request: CompletionRequest) -> Completion:
        client = await self._get_client()
        body = self.request_body(request)
        with translate_provider_errors(self.spec.provider):
            if self.endpoint == "chat/completions":
                chat = await client.chat.completions.create(**body)
                return _read_response(chat, self.spec.provider, chat=True)
            completion = await client.completions.create(**body)
            return _read_response(completion, self.spec.provider, chat=False)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        client = await self._get_client()
        with translate_provider_errors(self.spec.provider):
            response = await client.embeddings.create(model=self.model, input=list(texts))
        vectors = sorted(response.data, key=lambda item: item.index)
        if len(vectors) != len(texts):
            raise MalformedResponse(
                f"{self.spec.provider} returned {len(vectors)} embeddings for {len(texts)} texts"
            )
        return [list(item.embedding) for item in vectors]

    def _common_params(self, request: CompletionRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.seed is not None:
            params["seed"] = request.seed
        if request.stop:
            params["stop"] = list(request.stop)
        if request.logit_bias:
            params["logit_bias"] = {str(k): v for k, v in request.logit_bias.items()}
        return params

    def _chat_params(self, request: CompletionRequest) -> dict[str, Any]:
        params = self._common_params(request)
        if request.top_logprobs:
            params.update(logprobs=True, top_logprobs=request.top_logprobs)
        if request.label_enum is not None:
            schema = label_json_schema(request.label_enum)
            if self.json_schema_style == "openai":
                params["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "classification", "strict": True, "schema": schema},
                }
            else:
                params["response_format"] = {"type": "json_object", "schema": schema}
        return params

    def _completion_params(self, request: CompletionRequest) -> dict[str, Any]:
        params = self._common_params(request)
        if request.top_logprobs:
            params["logprobs"] = request.top_logprobs
        if request.label_enum is not None:
            if self.json_schema_style != "llama_cpp":
                raise SpecError(f"scoring: json_schema needs api: chat for provider {self.spec.provider}")
            params["extra_body"] = {"grammar": label_grammar(request.label_enum)}
        return params

    async def label_tokens(self, labels: Sequence[str]) -> dict[str, list[LabelToken]] | None:
        encoding = openai_encoding(self.model)
        return {
            label: [LabelToken(t, encoding.decode([t])) for t in encoding.encode(label)] for label in labels
        }

    async def aclose(self) -> None:
        if self._client is not None and self.http_client is None:
            try:
                await self._client.close()
            except RuntimeError:
                pass  # its event loop is already closed; the pool went with it
        self._client = None
        self._client_loop = None


register_backend(OpenAIBackend)


@register_backend
class AzureOpenAIBackend(OpenAIBackend):
    """Azure OpenAI: ``model`` is the deployment name, ``base_url`` the resource endpoint."""

    backend_id = "azure_openai"
    batch_url_prefix = ""  # global batch deployments take "/chat/completions"

    async def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncAzureOpenAI(
            api_key=self._api_key(),
            azure_endpoint=str(self.spec.base_url),
            api_version=self.spec.api_version,
            **self._client_options(),
        )


@register_backend
class OpenAICompatibleBackend(OpenAIBackend):
    """Any server that speaks OpenAI's API at ``base_url`` (vLLM, Ollama, llama.cpp, TGI)."""

    backend_id = "openai_compatible"
    batch_price_factor = None

    async def label_tokens(self, labels: Sequence[str]) -> dict[str, list[LabelToken]] | None:
        return None  # the server's tokenizer is unknown


def label_json_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of ``{"label": <one of labels>}``."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def label_grammar(labels: Sequence[str]) -> str:
    """A GBNF grammar for exactly ``{"label": "<label>"}``, for llama.cpp's completions API.

    No optional whitespace: a grammar that allows it lets a small model emit spaces until
    ``max_tokens`` runs out.
    """

    def literal(text: str) -> str:
        return json.dumps(text)  # a JSON string literal is a valid GBNF string literal

    choices = " | ".join(literal(json.dumps(label)) for label in labels)
    opening = literal('{"label": ')
    return f"root ::= {opening} label {literal('}')}\nlabel ::= {choices}\n"


def _read_response(response: Any, provider: str, *, chat: bool) -> Completion:
    """Read text, first-token alternatives and usage from a chat or a completions answer."""
    try:
        if not response.choices:
            raise MalformedResponse(f"{provider} answered without choices")
        choice = response.choices[0]
        top: list[tuple[str, float]] | None = None
        if chat:
            text = choice.message.content
            if choice.logprobs is not None and choice.logprobs.content:
                alternatives = choice.logprobs.content[0].top_logprobs
                top = [(alt.token, float(alt.logprob)) for alt in alternatives]
        else:
            text = choice.text
            if choice.logprobs is not None and choice.logprobs.top_logprobs:
                first: dict[str, float] = choice.logprobs.top_logprobs[0] or {}
                top = [(token, float(lp)) for token, lp in first.items()]
        usage = response.usage
        return Completion(
            text=str(text or ""),
            model=str(response.model),
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            top_logprobs=top,
            system_fingerprint=getattr(response, "system_fingerprint", None) or None,
        )
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise MalformedResponse(f"{provider} answered with an unexpected body: {exc!r}") from exc
