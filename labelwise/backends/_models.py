"""What a model accepts, by model family: the parameters a request may carry and the scoring
modes it can serve.

Providers refuse parameters per model, not per API: OpenAI's reasoning families (o1, o3, o4,
gpt-5) answer HTTP 400 ``unsupported_parameter`` to ``max_tokens`` (they take
``max_completion_tokens``, which also counts the hidden reasoning tokens), to any temperature
but the default, and to ``logprobs``/``logit_bias``; they take ``reasoning_effort`` instead.
Sources: OpenAI's reasoning guide and API reference (``CreateChatCompletionRequest``), Azure
OpenAI's reasoning-models article.

A family is matched by the longest prefix of the model id, after the fine-tuning decorations
are taken off (``ft:gpt-4o-mini-2024-07-18:org::id`` on OpenAI,
``gpt-4o-mini-2024-07-18.ft-<hex>`` on Azure). A model no family knows (a local or
self-hosted one) is assumed to accept everything; a spec overrides any of it with
``backend.capabilities`` when a provider ships a model this table does not know yet.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from ..core import StrictModel

__all__ = [
    "MODEL_FAMILIES",
    "CapabilityOverride",
    "ModelCapabilities",
    "base_model_id",
    "capabilities_of",
    "is_azure_fine_tuned",
]

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


class ModelCapabilities(StrictModel):
    """What requests to a model may carry."""

    reasoning: bool = False
    """Reasoning family: ``max_completion_tokens`` and ``reasoning_effort``; no temperature,
    top_p, stop, logprobs or logit_bias."""
    logprobs: bool = True
    """Returns top logprobs and takes logit_bias (``scoring: logprobs``)."""
    json_schema: bool = True
    """Takes ``response_format: json_schema`` with ``strict`` (``scoring: json_schema``)."""
    reasoning_effort: ReasoningEffort | None = None
    """The effort asked for by default (reasoning families): the lowest the family takes, since
    choosing among a few labels needs little thought and every reasoning token is billed."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """Room added to ``max_completion_tokens`` for reasoning at that effort, so that the answer
    is not cut off (``finish_reason: length`` with empty content) by the tokens spent thinking."""


class CapabilityOverride(StrictModel):
    """``backend.capabilities``: any of ``ModelCapabilities``, set for a model the table lacks."""

    reasoning: bool | None = None
    logprobs: bool | None = None
    json_schema: bool | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning_tokens: int | None = Field(default=None, ge=0)


_REASONING_GPT5 = ModelCapabilities(
    reasoning=True, logprobs=False, reasoning_effort="minimal", reasoning_tokens=1024
)
_REASONING_O = ModelCapabilities(
    reasoning=True, logprobs=False, reasoning_effort="low", reasoning_tokens=2048
)
_CHAT = ModelCapabilities()
_CHAT_NO_SCHEMA = ModelCapabilities(json_schema=False)

MODEL_FAMILIES: dict[str, ModelCapabilities] = {
    # Reasoning families.
    "gpt-5": _REASONING_GPT5,
    "gpt-5.1": ModelCapabilities(
        reasoning=True, logprobs=False, reasoning_effort="none", reasoning_tokens=1024
    ),
    "o1": _REASONING_O,
    "o3": _REASONING_O,
    "o4": _REASONING_O,
    # Chat families with logprobs; structured outputs since gpt-4o-2024-08-06 and gpt-4o-mini.
    "gpt-4.1": _CHAT,
    "gpt-4o": _CHAT,
    "gpt-4o-2024-05-13": _CHAT_NO_SCHEMA,
    "gpt-4-turbo": _CHAT_NO_SCHEMA,
    "gpt-4": _CHAT_NO_SCHEMA,
    "gpt-3.5": _CHAT_NO_SCHEMA,
    # The completions-API base models fine-tuned in the Yelp study.
    "davinci-002": _CHAT_NO_SCHEMA,
    "babbage-002": _CHAT_NO_SCHEMA,
}
"""Model-id prefixes and what their models take; the longest matching prefix wins."""

_OPENAI_FINE_TUNED = re.compile(r"^ft:([^:]+):")
_AZURE_FINE_TUNED = re.compile(r"^(.+?)\.ft-[0-9a-f]+")


def base_model_id(model: str) -> str:
    """The base model of a fine-tuned model id (OpenAI's ``ft:...`` or Azure's ``....ft-...``)."""
    for pattern in (_OPENAI_FINE_TUNED, _AZURE_FINE_TUNED):
        if match := pattern.match(model):
            return match.group(1)
    return model


def is_azure_fine_tuned(model: str) -> bool:
    """Whether ``model`` is an Azure fine-tuned model id (``BASE.ft-<hex>``), callable only once deployed."""
    return _AZURE_FINE_TUNED.match(model) is not None


def capabilities_of(model: str | None, override: CapabilityOverride | None = None) -> ModelCapabilities:
    """What requests to ``model`` may carry: its family's entry, then the spec's override."""
    base = base_model_id(model or "").lower()
    matches = [prefix for prefix in MODEL_FAMILIES if base.startswith(prefix)]
    found = MODEL_FAMILIES[max(matches, key=len)] if matches else ModelCapabilities()
    if override is None:
        return found
    changes = override.model_dump(exclude_none=True)
    return found.model_copy(update=changes)
