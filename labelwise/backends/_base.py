"""What every backend is: two protocols, each with one abstract method, and an open registry.

A ``CompletionBackend`` completes prompts (``complete``), an ``EmbeddingBackend`` embeds texts
(``embed``). Each backend declares what its provider needs of a ``BackendSpec`` (class
attributes and ``check_spec``); ``BackendSpec`` asks the registry, so a provider is any name
registered here. Built-ins register exactly as a third-party backend would, and
``completion_backend``/``embedding_backend`` refuse a provider that does not speak the protocol
asked for.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

from ..core import SpecError

if TYPE_CHECKING:
    import httpx

    from ._spec import BackendSpec, ScoringMode

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "CompletionBackend",
    "CompletionRequest",
    "EmbeddingBackend",
    "LabelToken",
    "backend_class",
    "completion_backend",
    "embedding_backend",
    "providers_speaking",
    "register_backend",
    "speaks",
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
    """The ``backend.provider`` name this backend registers under."""
    extras: ClassVar[tuple[str, ...]] = ()
    """The ``labelwise`` extras a deployment must install to use this backend."""
    batch_price_factor: ClassVar[float | None] = None
    """The price of the provider's Batch API against one request per text; ``None``: it has none."""
    max_in_flight: ClassVar[int | None] = None
    """Requests the backend serves at once, where that is known and small. More would wait in
    the server's queue with their timeouts running, so clients never send more."""

    default_key_env: ClassVar[str | None] = None
    """The variable holding the API key when ``backend.api_key_env`` names none."""
    needs_key: ClassVar[bool] = False
    """Calls fail without a key (a keyless local server ignores it)."""
    required_fields: ClassVar[tuple[str, ...]] = ()
    """``backend`` fields this provider cannot do without (e.g. ``base_url``)."""
    own_fields: ClassVar[tuple[str, ...]] = ()
    """``backend`` fields that only this provider reads (refused for the others)."""
    fixed_model: ClassVar[str | None] = None
    """The one model this backend serves, if it serves one only (no ``backend.model`` needed)."""
    default_api: ClassVar[Literal["chat", "completions"]] = "chat"
    fine_tunes: ClassVar[bool] = False
    """The provider runs fine-tuning jobs through the openai SDK's ``fine_tuning`` API."""
    openai_tokenizer: ClassVar[bool] = False
    """Prompts are counted with OpenAI's tokenizer (tiktoken); others are estimated."""
    serves_through_deployments: ClassVar[bool] = False
    """The provider calls a model only through a deployment made for it (Azure OpenAI)."""
    runs_weights_here: ClassVar[bool] = False
    """The backend runs model weights in this process (torch, ONNX Runtime): an encoder fine-tuned
    here, its weights in the artifact, runs through it."""
    refuses: ClassVar[tuple[type[Backend], ...]] = ()
    """Protocols a subclass inherits but its provider does not serve (llama.cpp's embeddings)."""

    @classmethod
    def check_spec(cls, spec: BackendSpec) -> None:
        """Raise ``ValueError`` naming what ``spec`` lacks or has too much of for this provider."""
        missing = [name for name in cls.required_fields if not getattr(spec, name)]
        if missing:
            raise ValueError(f"provider {cls.backend_id} needs {' and '.join(missing)}")
        foreign = [
            name for name in _OWN_FIELDS if name not in cls.own_fields and getattr(spec, name) is not None
        ]
        if foreign:
            owners = sorted({_OWN_FIELDS[name] for name in foreign})
            raise ValueError(f"{' and '.join(foreign)} apply to provider {', '.join(owners)} only")

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


_OWN_FIELDS: dict[str, str] = {}  # a backend field -> the provider that owns it


def register_backend(cls: type[B]) -> type[B]:
    """Class decorator: make ``cls`` the backend for ``provider: <cls.backend_id>``."""
    BACKENDS[cls.backend_id] = cls
    _OWN_FIELDS.update(dict.fromkeys(cls.own_fields, cls.backend_id))
    return cls


@functools.cache
def _register_builtins() -> None:
    # The built-in backends register when their modules load, and nothing else may have loaded
    # them yet (the package imports its modules on first use). Once per process.
    from . import _embeddings, _local, _openai  # noqa: F401


def backend_class(provider: str) -> type[Backend]:
    """The backend registered for ``provider``, the built-in ones included."""
    _register_builtins()
    try:
        return BACKENDS[provider]
    except KeyError:
        raise SpecError(
            f"no backend registered for provider {provider!r}; known: {', '.join(sorted(BACKENDS))}"
        ) from None


def speaks(backend: type[Backend], protocol: type[Backend]) -> bool:
    """Whether ``backend`` serves ``protocol`` (``CompletionBackend`` or ``EmbeddingBackend``)."""
    return issubclass(backend, protocol) and not any(issubclass(protocol, r) for r in backend.refuses)


def providers_speaking(protocol: type[Backend]) -> list[str]:
    """The registered providers that serve ``protocol``, sorted."""
    _register_builtins()
    return sorted(name for name, cls in BACKENDS.items() if speaks(cls, protocol))


def _serving(spec: BackendSpec, protocol: type[Backend], what: str) -> type[Backend]:
    backend_cls = backend_class(spec.provider)
    if not speaks(backend_cls, protocol):
        able = ", ".join(providers_speaking(protocol))
        raise SpecError(f"provider {spec.provider} gives no {what}; providers that do: {able}")
    return backend_cls


def completion_backend(
    spec: BackendSpec,
    *,
    model: str,
    scoring: ScoringMode = "generate",
    http_client: httpx.AsyncClient | None = None,
) -> CompletionBackend:
    """The registered completion backend for ``spec.provider``."""
    backend_cls = _serving(spec, CompletionBackend, "completions")
    backend = backend_cls(spec, model=model, scoring=scoring, http_client=http_client)
    assert isinstance(backend, CompletionBackend)  # _serving checked its class
    return backend


def embedding_backend(
    spec: BackendSpec, *, model: str, http_client: httpx.AsyncClient | None = None
) -> EmbeddingBackend:
    """The registered embedding backend for ``spec.provider``."""
    backend = _serving(spec, EmbeddingBackend, "embeddings")(spec, model=model, http_client=http_client)
    assert isinstance(backend, EmbeddingBackend)  # _serving checked its class
    return backend
