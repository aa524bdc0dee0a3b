"""A sentence-transformers model run int8-quantized in ONNX Runtime: faster on a CPU.

The first use exports the model's transformer to ONNX with torch, fuses its attention and
layer-norm blocks (ONNX Runtime's transformer optimizer), quantizes its weights to int8 per
channel (dynamic quantization) and keeps the file under ``$LABELWISE_HOME/onnx``, keyed on the
model's files and the library versions; later loads need only onnxruntime and tokenizers. Mean
pooling as sentence-transformers does it; the ``Embedder`` normalises the vectors.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core import SpecError, labelwise_home

__all__ = ["OnnxInt8Encoder", "export_quantized", "onnx_int8_encoder", "onnx_session"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_RECIPE = "eager-fused-int8-first-block-float"  # part of the file's key: a new recipe, a new file


@functools.lru_cache(maxsize=4)
def onnx_int8_encoder(model: str, max_tokens: int | None) -> OnnxInt8Encoder:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SpecError("runtime onnx_int8 needs the onnx extra: pip install 'labelwise[onnx]'") from None
    from ._embeddings import model_location

    location = Path(model_location(model))
    if not (location / "tokenizer.json").exists():
        raise SpecError(f"runtime onnx_int8 needs the model's files on this machine; {location} has none")
    return OnnxInt8Encoder(location, _quantized_file(model, location), max_tokens=max_tokens)


def _quantized_file(model: str, location: Path) -> Path:
    import onnxruntime

    fingerprint = hashlib.sha256(f"{_RECIPE}:{onnxruntime.__version__}".encode())
    for path in sorted(location.rglob("*")):
        if path.is_file():  # names and sizes: enough to tell one set of weights from another
            fingerprint.update(f"{path.relative_to(location)}:{path.stat().st_size}".encode())
    target = labelwise_home() / "onnx" / f"{location.name}-{fingerprint.hexdigest()[:16]}-int8.onnx"
    if not target.exists():
        _export_int8(model, target)
    return target


def _export_int8(model: str, target: Path) -> None:
    """The sentence-transformers model's transformer, to ``last_hidden_state``."""
    import torch
    from transformers import AutoModel

    from ._embeddings import hide_transformers_progress, model_location

    class LastHiddenState(torch.nn.Module):
        def __init__(self, transformer: Any) -> None:
            super().__init__()
            self.transformer = transformer  # a submodule: its weights export as weights

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    hide_transformers_progress()
    # Eager attention exports as plain MatMul/Softmax, the pattern the optimizer fuses.
    location = model_location(model)
    transformer = AutoModel.from_pretrained(location, attn_implementation="eager", local_files_only=True)
    export_quantized(LastHiddenState(transformer), transformer.config, "last_hidden_state", target)


def export_quantized(module: Any, config: Any, output: str, target: Path) -> None:
    """Export a BERT-like ``module(input_ids, attention_mask, token_type_ids) -> output`` to ONNX,
    fuse, quantize to int8, and move the file into place atomically."""
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    target.parent.mkdir(parents=True, exist_ok=True)
    float_file = target.with_name(f".{target.name}.{os.getpid()}.float")
    fused_file = target.with_name(f".{target.name}.{os.getpid()}.fused")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    example = torch.ones((1, 8), dtype=torch.long)
    try:
        axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS} | {output: {0: "batch"}}
        if output == "last_hidden_state":
            axes[output] = {0: "batch", 1: "tokens"}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing
            torch.onnx.export(
                module.eval(),
                (example, example, torch.zeros_like(example)),
                str(float_file),
                input_names=list(_INPUTS),
                output_names=[output],
                opset_version=17,
                dynamic_axes=axes,
                dynamo=False,
            )
        with _root_logger_silenced():  # the optimizer's and quantizer's advice goes to the root logger
            fused = optimize_model(
                str(float_file),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
            )
            fused.save_model_to_file(str(fused_file))
            # The first block stays in float: its rounding error would pass through every later
            # block. Measured on the Yelp sample, this keeps weighted F1 at torch's (bench/).
            first_block = [node.name for node in fused.model.graph.node if "layer.0/" in node.name]
            quantize_dynamic(
                fused_file,
                partial,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,  # 7-bit weights: no overflow in AVX2's u8*s8 multiply-add
                nodes_to_exclude=first_block,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # for the fused ops
            )
        os.replace(partial, target)
    finally:
        for scratch in (float_file, fused_file, partial):
            scratch.unlink(missing_ok=True)


@contextlib.contextmanager
def _root_logger_silenced() -> Iterator[None]:
    # A handler on the root logger keeps logging.warning() from installing its own stderr one.
    root, quiet = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(quiet)


def onnx_session(onnx_file: Path) -> Any:
    """An ONNX Runtime session on the CPU, on every core."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    return onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


class OnnxInt8Encoder:
    """Tokenize, run the quantized transformer, mean-pool: ``encode(texts) -> (n, dim)`` array."""

    def __init__(self, location: Path, onnx_file: Path, *, max_tokens: int | None) -> None:
        from tokenizers import Tokenizer

        pooling = json.loads((location / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise SpecError("runtime onnx_int8 supports mean-pooling sentence-transformers models only")
        limit = json.loads((location / "sentence_bert_config.json").read_text()).get("max_seq_length", 512)
        self.tokenizer = Tokenizer.from_file(str(location / "tokenizer.json"))
        self.tokenizer.enable_truncation(min(max_tokens or limit, limit))
        self.tokenizer.enable_padding()
        self.session = onnx_session(onnx_file)

    def encode(self, texts: list[str], *, batch_size: int = 8) -> np.ndarray:
        from ._encoder import by_length, token_arrays

        vectors: list[np.ndarray] = [np.empty(0)] * len(texts)
        for chosen in by_length(texts, batch_size):
            feed = token_arrays(self.tokenizer, [texts[i] for i in chosen])
            (hidden,) = self.session.run(None, feed)
            weights = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            for i, vector in zip(chosen, pooled, strict=True):
                vectors[i] = vector
        return np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
