"""OpenAI tokenizers (tiktoken) that also work offline.

tiktoken downloads its tables on first use and keeps them in a cache. Where the network is
closed, the tables shipped by the ``bpe-openai`` package (the ``offline`` extra) are put into
that cache instead; tiktoken checks them against its own SHA-256, so nothing unverified is used.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import SpecError

if TYPE_CHECKING:
    import tiktoken

__all__ = ["openai_encoding"]

_TABLES = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def _cache_dir() -> Path:
    # The same lookup tiktoken makes.
    configured = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "data-gym-cache"


def _seed_cache() -> None:
    # Found without importing it: only its data files are wanted, not its compiled tokenizer.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        return
    data_dir = Path(list(spec.submodule_search_locations)[0]) / "data"
    cache = _cache_dir()
    for name, url in _TABLES.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        source = data_dir / f"{name}.tiktoken.gz"
        if target.exists() or not source.is_file():
            continue
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(gzip.decompress(source.read_bytes()))
        partial.replace(target)


@functools.cache
def openai_encoding(model: str) -> tiktoken.Encoding:
    """The tokenizer of an OpenAI model (a fine-tuned id uses its base model's), loaded once."""
    import tiktoken

    base = model.removeprefix("ft:").split(":")[0]
    _seed_cache()
    try:
        try:
            return tiktoken.encoding_for_model(base)
        except KeyError:  # a model tiktoken does not know: current OpenAI models use o200k
            return tiktoken.get_encoding("o200k_base")
    except Exception as exc:
        raise SpecError(
            f"cannot load the tokenizer for {base} ({exc}); install the 'offline' extra "
            "(pip install 'labelwise[offline]') or allow tiktoken one download"
        ) from exc
