"""OpenAI's API through the ``openai`` SDK, and the providers that speak it (Azure OpenAI, any
OpenAI-compatible server). They are both backends, completing and embedding, and differ only in
how they build their ``AsyncOpenAI`` client.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import openai
from openai.types.chat import ChatCompletionMessageParam

from ..core import SpecError
from ._base import (
    Completion,
    CompletionBackend,
    CompletionRequest,
    EmbeddingBackend,
    LabelToken,
    register_backend,
)
from ._errors import BackendAuthError, MalformedResponse, translate_provider_errors
from ._models import ModelCapabilities
from ._tokenizers import openai_encoding

_MAX_CHAT_LOGPROBS = 20  # the chat schema's maximum of top_logprobs

__all__ = [
    "AzureOpenAIBackend",
    "OpenAIBackend",
    "OpenAICompatibleBackend",
    "label_grammar",
    "label_json_schema",
]


class OpenAIBackend(CompletionBackend, EmbeddingBackend):
    """OpenAI's API. Subclasses change only how the client is made."""

    backend_id = "openai"
    default_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    needs_key: ClassVar[bool] = True
    fine_tunes: ClassVar[bool] = True
    openai_tokenizer: ClassVar[bool] = True
    batch_price_factor: ClassVar[float | None] = 0.5
    batch_url_prefix: ClassVar[str] = "/v1"
    """What precedes ``/chat/completions`` in a Batch API request line's ``url``."""
    # How the provider takes a JSON schema: OpenAI's json_schema response format, or
    # llama.cpp's {"type": "json_object", "schema": ...} and GBNF grammars.
    json_schema_style: ClassVar[str] = "openai"
    max_completion_logprobs: ClassVar[int | None] = 5
    """The most top logprobs the legacy completions endpoint returns (the schema's maximum)."""
    fine_tuning_metadata: ClassVar[bool] = True
    """Fine-tuning jobs carry ``metadata`` and can be listed by it."""
    fine_tuning_closing: ClassVar[bool] = True
    """The provider is ending self-serve fine-tuning (OpenAI, 2026-2027): a refusal says so."""

    @classmethod
    def takes_fine_tuning_method(cls, api_version: str | None) -> bool:
        """Hyperparameters go inside ``method`` (else at the top level of the job request)."""
        return True

    @classmethod
    def takes_file_expiry(cls, api_version: str | None) -> bool:
        """Uploaded and Batch API output files take ``expires_after``."""
        return True

    # Made on first use, per event loop (see _get_client).
    _client: openai.AsyncOpenAI | None = None
    _client_loop: asyncio.AbstractEventLoop | None = None

    def _api_key(self) -> str:
        name = self.spec.key_env
        key = os.environ.get(name) if name else None
        if key:
            return key
        if self.needs_key:
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
            return {"model": self.wire_model, "messages": messages, **self._chat_params(request)}
        prompt = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        return {"model": self.wire_model, "prompt": prompt, **self._completion_params(request)}

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
            response = await client.embeddings.create(model=self.wire_model, input=list(texts))
        vectors = sorted(response.data, key=lambda item: item.index)
        if len(vectors) != len(texts):
            raise MalformedResponse(
                f"{self.spec.provider} returned {len(vectors)} embeddings for {len(texts)} texts"
            )
        return [list(item.embedding) for item in vectors]

    @property
    def wire_model(self) -> str:
        """What the request names as its model (on Azure, the deployment that serves it)."""
        return self.model

    @functools.cached_property
    def capabilities(self) -> ModelCapabilities:
        """What requests to this model may carry (see ``_models``); looked up once, as the
        spec and model of a backend never change."""
        return self.spec.capabilities_of(self.model)

    def _common_params(self, request: CompletionRequest) -> dict[str, Any]:
        capabilities = self.capabilities
        params: dict[str, Any] = {}
        if request.seed is not None:
            params["seed"] = request.seed
        if capabilities.reasoning:
            # Reasoning models refuse max_tokens, sampling settings, stop and logit_bias; their
            # token budget covers the hidden reasoning too, so room is added for it.
            params["max_completion_tokens"] = request.max_tokens + capabilities.reasoning_tokens
            if capabilities.reasoning_effort is not None:
                params["reasoning_effort"] = capabilities.reasoning_effort
            return params
        params.update(max_tokens=request.max_tokens, temperature=request.temperature)
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop"] = list(request.stop)
        if request.logit_bias and capabilities.logprobs:
            # The schema takes integers from -100 to 100.
            params["logit_bias"] = {
                str(k): max(-100, min(100, round(v))) for k, v in request.logit_bias.items()
            }
        return params

    def _chat_params(self, request: CompletionRequest) -> dict[str, Any]:
        params = self._common_params(request)
        if request.top_logprobs and self.capabilities.logprobs:
            params.update(logprobs=True, top_logprobs=min(request.top_logprobs, _MAX_CHAT_LOGPROBS))
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
        if request.top_logprobs and self.capabilities.logprobs:
            limit = self.max_completion_logprobs
            params["logprobs"] = request.top_logprobs if limit is None else min(request.top_logprobs, limit)
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
    """Azure OpenAI: ``base_url`` is the resource endpoint; a model is called through its
    deployment (``backend.deployment``, else ``model`` is taken as the deployment's name)."""

    backend_id = "azure_openai"
    default_key_env = "AZURE_OPENAI_API_KEY"
    required_fields = ("base_url", "api_version")
    own_fields = ("deployment", "batch_deployment")
    serves_through_deployments = True
    batch_url_prefix = ""  # global batch deployments take "/chat/completions"
    fine_tuning_metadata = False  # the authoring API's jobs have none
    fine_tuning_closing = False

    @classmethod
    def takes_fine_tuning_method(cls, api_version: str | None) -> bool:
        # GA 2024-10-21 takes hyperparameters at the top level; the previews since 2024-12 and
        # the 2025 versions take ``method``.
        version = api_version or ""
        return version >= "2025-" or (version >= "2024-12-01" and "preview" in version)

    @classmethod
    def takes_file_expiry(cls, api_version: str | None) -> bool:
        return (api_version or "") >= "2025-03"

    @property
    def wire_model(self) -> str:
        # The SDK puts the request's model in the path: /openai/deployments/{model}/...
        return self.spec.deployment or self.model

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
    default_key_env = None
    needs_key = False
    fine_tunes = False
    openai_tokenizer = False
    required_fields = ("base_url",)
    batch_price_factor = None
    max_completion_logprobs = None  # servers such as vLLM and llama.cpp return more

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
