"""``BackendSpec``: which provider serves a model, and how to call it. Holds no secret, only its name.

``provider`` is any name in the backend registry; each backend says what its provider needs of
the spec (``Backend.check_spec``), so a plug-in backend is validated exactly as a built-in one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..core import SpecError, StrictModel
from ._models import CapabilityOverride, ModelCapabilities, capabilities_of

if TYPE_CHECKING:
    from ._base import Backend

__all__ = ["BackendSpec", "ScoringMode"]

ScoringMode = Literal["generate", "logprobs", "json_schema"]

_ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def _looks_like_a_key(name: str) -> bool:
    # Variable names are words joined by "_"; keys are long runs of letters and digits.
    return "_" not in name and len(name) >= 16 and any(c.isdigit() for c in name)


class BackendSpec(StrictModel):
    """Which provider serves the model, and how to call it. Holds no secret, only its name."""

    provider: str = Field(
        default="local",
        description="A registered backend: local, openai, azure_openai, openai_compatible, "
        "sentence_transformers, or a plug-in's.",
    )
    model: str | None = Field(default=None, min_length=1)
    base_url: str | None = Field(
        default=None,
        description="openai_compatible: the server's /v1 URL; azure_openai: the endpoint.",
    )
    api_version: str | None = Field(default=None, description="azure_openai only.")
    deployment: str | None = Field(
        default=None,
        min_length=1,
        description="azure_openai only: the deployment that serves the model (Azure calls a model "
        "only through a deployment); default: model, taken as the deployment's name.",
    )
    batch_deployment: str | None = Field(
        default=None,
        min_length=1,
        description="azure_openai only: the Global-Batch deployment that runs Batch API jobs "
        "(a standard deployment takes no batches).",
    )
    capabilities: CapabilityOverride | None = Field(
        default=None,
        description="What the model accepts, where the built-in table by model family is wrong "
        "or does not know the model yet (reasoning, logprobs, json_schema, reasoning_effort).",
    )
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the API key."
    )
    api: Literal["chat", "completions"] | None = Field(
        default=None, description="Default: completions for the local base model, chat otherwise."
    )
    runtime: Literal["torch", "onnx_int8"] | None = Field(
        default=None,
        description="sentence_transformers only: torch (default), or onnx_int8: the model "
        "int8-quantized in ONNX Runtime, faster on a CPU (the onnx extra).",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=8,
        description="sentence_transformers only: truncate each text to this many tokens "
        "(default: the model's own limit); fewer is faster.",
    )
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    usd_per_million_prompt_tokens: float = Field(default=0.0, ge=0, description="For cost estimates.")
    usd_per_million_completion_tokens: float = Field(default=0.0, ge=0, description="For cost estimates.")

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ENV_VAR_NAME.match(value) or _looks_like_a_key(value):
            # Never echo the value: it may be the key itself.
            raise ValueError(
                "api_key_env must be the NAME of an environment variable that holds the key "
                "(upper case, digits and '_', e.g. OPENAI_API_KEY), never the key itself"
            )
        return value

    @field_validator("provider")
    @classmethod
    def _is_registered(cls, value: str) -> str:
        from ._base import backend_class

        try:
            backend_class(value)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _provider_fields(self) -> BackendSpec:
        self.backend.check_spec(self)
        if self.base_url:
            url = urlsplit(self.base_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError("backend.base_url must be an http(s) URL such as http://127.0.0.1:8000/v1")
            if url.username or url.password or url.query:
                raise ValueError(
                    "backend.base_url must not carry credentials or a query string: secrets never "
                    "go in a spec; name the key's environment variable in api_key_env"
                )
        return self

    @property
    def key_env(self) -> str | None:
        """The environment variable holding the key: the one named, or the provider's default."""
        return self.api_key_env or self.backend.default_key_env

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Estimated price of a call from its token counts."""
        return (
            prompt_tokens * self.usd_per_million_prompt_tokens
            + completion_tokens * self.usd_per_million_completion_tokens
        ) / 1e6

    def capabilities_of(self, model: str) -> ModelCapabilities:
        """What requests to ``model`` through this backend may carry (the table, then the override)."""
        return capabilities_of(model, self.capabilities)

    @property
    def api_kind(self) -> Literal["chat", "completions"]:
        return self.api or self.backend.default_api

    @property
    def backend(self) -> type[Backend]:
        """The backend class registered for ``provider``."""
        from ._base import backend_class

        return backend_class(self.provider)
