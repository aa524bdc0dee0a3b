"""An encoder classifier trained here: the files an artifact holds, and how they classify texts.

One format for every local fine-tune: a transformer body (any Hugging Face encoder), mean
pooling over the tokens (L2-normalised if asked), and a linear layer to the labels. End-to-end
fine-tuning trains all of it; the few-labels mode trains the body contrastively and fits the
head by logistic regression, whose coefficients are the same linear layer. The artifact holds the
weights as safetensors, the body's config as JSON and the tokenizer as JSON: loading reads no
pickle and needs no network. ``runtime: onnx_int8`` runs the same model int8-quantized in ONNX
Runtime, exported on first use and kept under ``$LABELWISE_HOME/onnx`` keyed on the weights.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..core import SpecError, labelwise_home

__all__ = [
    "ENCODER_CONFIG",
    "ENCODER_FILES",
    "ENCODER_TOKENIZER",
    "ENCODER_WEIGHTS",
    "EncoderFormat",
    "EncoderPredictor",
    "EncoderTokenizer",
    "by_length",
    "encoder_predictor",
    "encoders_loaded",
    "padded",
    "token_arrays",
]

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_CONFIG = "encoder_config.json"
ENCODER_TOKENIZER = "encoder_tokenizer.json"
ENCODER_FILES = (ENCODER_WEIGHTS, ENCODER_CONFIG, ENCODER_TOKENIZER)
_ONNX_RECIPE = "encoder-classifier-int8-v1"

Runtime = Literal["torch", "onnx_int8"]


@dataclass(frozen=True)
class EncoderFormat:
    """What the files alone do not say: the head's width, the pooling and the truncation."""

    n_labels: int
    normalize: bool
    max_tokens: int


def by_length(items: Sequence[Sized], batch_size: int) -> Iterator[list[int]]:
    """Indexes of ``items`` (texts, token ids) in batches, longest first: little of each batch is padding."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class EncoderTokenizer:
    """Token ids of texts, cut to ``max_tokens`` as the encoder was trained: the first quarter and
    the last three quarters of a long text are kept (reviews say what they think at the start and
    at the end; head-and-tail truncation, Sun et al. 2019), with the model's opening and closing
    tokens kept in place."""

    def __init__(self, data: bytes, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(data.decode())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_tokens = max_tokens

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        keep = self.max_tokens - 2
        head = keep // 4
        cut = []
        for encoding in self._tokenizer.encode_batch(list(texts)):
            ids = encoding.ids
            if len(ids) > self.max_tokens:
                inner = ids[1:-1]
                ids = [ids[0], *inner[:head], *inner[len(inner) - (keep - head) :], ids[-1]]
            cut.append(ids)
        return cut


def padded(ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """The model's three inputs for a batch of token ids, padded to the longest (int64, as both
    runtimes take them; BERT-like tokenizers pad with id 0)."""
    width = max((len(row) for row in ids), default=0)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, values in enumerate(ids):
        input_ids[row, : len(values)] = values
        mask[row, : len(values)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}


def token_arrays(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The three inputs of a batch of texts, from a ``tokenizers`` tokenizer that pads."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


class EncoderPredictor:
    """``predict_proba(texts) -> (n, labels)`` from an artifact's encoder files."""

    # One forward pass at a time per process: torch and ONNX Runtime already use every core.
    _lock = threading.Lock()

    def __init__(self, files: Mapping[str, bytes], form: EncoderFormat, runtime: Runtime) -> None:
        self.tokenizer = EncoderTokenizer(files[ENCODER_TOKENIZER], form.max_tokens)
        self.runtime = runtime
        if runtime == "onnx_int8":
            from ._onnx import onnx_session

            self._session = onnx_session(_quantized_file(files, form))
        else:
            from ._encoder_model import classifier_from_files

            self._model = classifier_from_files(files, form)

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.runtime == "onnx_int8":
            return np.asarray(self._session.run(None, feed)[0], dtype=np.float64)
        import torch

        with torch.inference_mode():
            tensors = {name: torch.from_numpy(array) for name, array in feed.items()}
            return np.asarray(self._model(**tensors).double().numpy())

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 8) -> np.ndarray:
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        with self._lock:
            for chosen in by_length(texts, batch_size):
                probabilities = _softmax(self.logits(padded(self.tokenizer.ids([texts[i] for i in chosen]))))
                for i, row in zip(chosen, probabilities, strict=True):
                    rows[i] = row
        return np.stack(rows) if rows else np.zeros((0, 0))


_loaded: dict[tuple[str, str], EncoderPredictor] = {}
_loading = threading.Lock()


def weights_key(files: Mapping[str, bytes]) -> str:
    """A hash of the encoder's files: which model this is, whatever artifact holds it."""
    digest = hashlib.sha256()
    for name in ENCODER_FILES:
        digest.update(hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def encoder_predictor(files: Mapping[str, bytes], form: EncoderFormat, runtime: Runtime) -> EncoderPredictor:
    """The predictor of these files, loaded once per process and kept (a few at most)."""
    missing = [name for name in ENCODER_FILES if name not in files]
    if missing:
        raise SpecError(f"the encoder classifier's files {missing} are missing from the artifact")
    key = (weights_key(files), runtime)
    with _loading:
        if key not in _loaded:
            if len(_loaded) >= 4:
                _loaded.pop(next(iter(_loaded)))
            _loaded[key] = EncoderPredictor(files, form, runtime)
            _loads[0] += 1
        return _loaded[key]


_loads = [0]  # loads so far in this process (a list: a module-level int cannot be rebound in place)


def encoders_loaded() -> int:
    """How many encoder classifiers this process has loaded."""
    return _loads[0]


def _quantized_file(files: Mapping[str, bytes], form: EncoderFormat) -> Any:
    """The int8 ONNX file of these weights: exported once, then reused."""
    import json

    try:
        import onnxruntime
    except ImportError:
        raise SpecError("runtime onnx_int8 needs the onnx extra: pip install 'labelwise[onnx]'") from None
    from types import SimpleNamespace

    fingerprint = hashlib.sha256(f"{_ONNX_RECIPE}:{onnxruntime.__version__}:{weights_key(files)}".encode())
    fingerprint.update(repr(form).encode())
    target = labelwise_home() / "onnx" / f"encoder-{fingerprint.hexdigest()[:24]}-int8.onnx"
    if not target.exists():
        from ._encoder_model import classifier_from_files
        from ._onnx import export_quantized

        model = classifier_from_files(files, form)
        config = SimpleNamespace(**json.loads(files[ENCODER_CONFIG]))
        export_quantized(model, config, "logits", target)
    return target
