"""The torch side of an encoder classifier: the module, built from a base model or from its files.

Imported only where torch is wanted (training, the torch runtime, the ONNX export); the rest of
labelwise reads the format through ``_encoder``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import safetensors.torch
import torch

from ._encoder import ENCODER_CONFIG, ENCODER_WEIGHTS, EncoderFormat

__all__ = ["EncoderClassifier", "classifier_from_base", "classifier_from_files", "weights_file"]


class EncoderClassifier(torch.nn.Module):
    """A transformer body, mean pooling (L2-normalised if asked) and a linear layer to the labels."""

    def __init__(self, body: Any, n_labels: int, *, normalize: bool, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = body
        self.normalize = normalize
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(body.config.hidden_size, n_labels)

    def pooled(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        """The labels' logits."""
        return self.head(self.dropout(self.pooled(input_ids, attention_mask, token_type_ids)))


def _quiet_transformers() -> None:
    from ._embeddings import hide_transformers_progress

    hide_transformers_progress()


def classifier_from_base(location: str, n_labels: int, *, normalize: bool, seed: int) -> EncoderClassifier:
    """A new classifier on the pretrained body at ``location`` (a folder), its head seeded."""
    from transformers import AutoModel

    _quiet_transformers()
    body = AutoModel.from_pretrained(location, local_files_only=True, attn_implementation="eager")
    torch.manual_seed(seed)
    return EncoderClassifier(body, n_labels, normalize=normalize)


def classifier_from_files(files: Mapping[str, bytes], form: EncoderFormat) -> EncoderClassifier:
    """The classifier an artifact holds (its config and safetensors weights; no pickle is read)."""
    from transformers import AutoConfig, AutoModel

    _quiet_transformers()
    config_values = json.loads(files[ENCODER_CONFIG])
    config = AutoConfig.for_model(config_values.pop("model_type"), **config_values)
    config._attn_implementation = "eager"  # exports as the MatMul/Softmax pattern ONNX fuses
    body = AutoModel.from_config(config)  # type: ignore[no-untyped-call]
    model = EncoderClassifier(body, form.n_labels, normalize=form.normalize)
    state = safetensors.torch.load(files[ENCODER_WEIGHTS])
    model.load_state_dict(state, strict=True)
    return model.eval()


def weights_file(model: EncoderClassifier) -> bytes:
    """The weights as safetensors bytes (contiguous copies: safetensors refuses views)."""
    return safetensors.torch.save({name: t.detach().contiguous() for name, t in model.state_dict().items()})


def config_file(model: EncoderClassifier) -> bytes:
    """The body's transformers config, without the fields that name where it was loaded from."""
    values = model.body.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "_attn_implementation_autoset"):
        values.pop(volatile, None)
    return (json.dumps(values, sort_keys=True, indent=2) + "\n").encode()
