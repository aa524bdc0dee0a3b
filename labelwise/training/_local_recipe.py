"""What a local fine-tune is asked to do: the recipe, and the data split it is done on.

The data rules are those of provider fine-tuning: a seeded stratified test share held out first
(one row per text), then a validation split sized so its accuracy is within about +-5 points
(``validation_size``), stratified too. Labels come from the data: numbers (stars) sorted as
numbers and taken as ordinal.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core import LabelwiseError, text_key
from ..evaluation import LabelledData, split_labelled
from ..packaging import TrainingData
from ._finetune import validation_size
from ._train_embedding import read_and_split

__all__ = ["DEFAULT_BASE_MODEL", "FEW_LABELS_PER_LABEL", "LocalRecipe", "LocalSplits", "split_for_training"]

DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"


class LocalRecipe(BaseModel):
    """How the encoder is fine-tuned. Every field is part of the run's identity (resume, provenance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str = DEFAULT_BASE_MODEL
    mode: Literal["auto", "end_to_end", "few_labels"] = Field(
        default="auto",
        description="auto: few_labels up to 100 training rows a label, end_to_end above (measured: bench/).",
    )
    max_tokens: int = Field(default=128, ge=8, le=8192)
    epochs: float = Field(default=2, gt=0)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    head_learning_rate: float = Field(default=1e-3, gt=0, description="The new head learns from zero.")
    warmup_share: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.01, ge=0)
    loss: Literal["cross_entropy", "ordinal"] = Field(
        default="cross_entropy",
        description="ordinal: cross-entropy plus the expected distance in labels (ordered labels only).",
    )
    evaluations_per_epoch: int = Field(default=2, ge=1)
    patience: int = Field(
        default=2, ge=1, description="Evaluations without a lower validation loss before stopping."
    )
    pairs_per_text: int = Field(default=20, ge=1, description="few_labels: contrastive pairs drawn per text.")

    def for_data(self, train_rows: int, n_labels: int) -> LocalRecipe:
        """The recipe as run on this many training rows: ``auto`` decided, and the few-labels
        mode's own defaults (one pass over 10 pairs a text, as measured) where none was given."""
        mode = self.mode
        if mode == "auto":
            mode = "few_labels" if train_rows <= FEW_LABELS_PER_LABEL * n_labels else "end_to_end"
        update: dict[str, Any] = {"mode": mode}
        if mode == "few_labels":
            update |= {k: v for k, v in _FEW_LABELS_DEFAULTS.items() if k not in self.model_fields_set}
        return self.model_copy(update=update)


# Measured on Yelp-5 (bench/local_finetune.py): at 50 training rows a label the few-labels mode
# beat end to end by 13 points of weighted F1 and frozen embeddings by 6; at 320 a label end to
# end beat frozen embeddings by 6.5.
FEW_LABELS_PER_LABEL = 100
_FEW_LABELS_DEFAULTS = {"epochs": 1, "pairs_per_text": 10}


@dataclass(frozen=True)
class LocalSplits:
    train: LabelledData
    validation: LabelledData
    test: LabelledData
    labels: list[str]
    ordinal: bool
    data: TrainingData


def _facts(data: LabelledData) -> dict[str, Any]:
    keys = "\n".join(sorted(text_key(t) for t in data.texts)).encode()
    return {
        "rows": len(data.texts),
        "labels": dict(sorted(Counter(data.labels).items())),
        "sha256": hashlib.sha256(keys).hexdigest(),
    }


def split_for_training(
    path: Path,
    *,
    text_col: str,
    label_col: str,
    test_share: float,
    seed: int,
    sample: int | None = None,
    labelled_rows: int | None = None,
) -> LocalSplits:
    """Test rows held out first, then validation. ``labelled_rows`` keeps that many of the other
    rows (seeded, stratified) before validation is held out of them: what more labelled data buys,
    measured on the same test rows."""
    split = read_and_split(
        path, text_col=text_col, label_col=label_col, test_size=test_share, seed=seed, sample=sample
    )
    rest = split.train
    if labelled_rows is not None and labelled_rows < len(rest.texts):
        rest, _ = split_labelled(rest, test_size=len(rest.texts) - labelled_rows, seed=seed)
    held = validation_size(len(rest.texts), len(split.labels))
    if held < len(split.labels):
        raise LabelwiseError(
            f"{path}: {len(rest.texts)} rows left after the test share: too few to hold out "
            "a validation split"
        )
    train, validation = split_labelled(rest, test_size=held, seed=seed)
    data = TrainingData(
        name=path.name,
        sha256=split.train.dataset.sha256,
        rows=split.train.dataset.rows,
        text_col=text_col,
        label_col=label_col,
        duplicates_removed=split.repeated,
        splits={"train": _facts(train), "validation": _facts(validation), "test": _facts(split.test)},
    )
    return LocalSplits(train, validation, split.test, split.labels, split.ordinal, data)
