"""``finetune start --local``: fine-tune an encoder here, package it, measure it, report the gap.

The steps: split the data (test rows first, then validation: ``split_for_training``); train
(``train_encoder``, resumable from its checkpoints in ``OUT/checkpoint``); package the kept
weights as safetensors with their provenance; measure the artifact on the held-out rows and
attach the eval card and what monitoring needs; with ``runtime onnx_int8``, check the int8
model against the float one on the same rows; and the gap report: what the training loop saw on
validation against the artifact's measurements. ``OUT`` keeps the validation and test rows, so
``labelwise finetune gap`` can be run again later.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ..backends import ENCODER_CONFIG, ENCODER_TOKENIZER, ENCODER_WEIGHTS
from ..core import text_key, write_atomic, write_frame
from ..evaluation import EvalCard, LabelledData, attach_evaluation, evaluate
from ..packaging import (
    TRAINING_TEXTS,
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    LocalTrainingProvenance,
    Prediction,
    package,
)
from ._few_labels import train_few_labels
from ._finetune import GapReport, gap_report
from ._local_loop import TrainedEncoder, TrainProgress, base_model_files, pick_device, train_encoder
from ._local_recipe import LocalRecipe, LocalSplits, split_for_training

__all__ = ["LocalFineTuneReport", "LocalFineTuneResult", "Int8Check", "encoder_artifact", "finetune_local"]

VALIDATION_FILE = "validation.csv"
TEST_FILE = "test.csv"
REPORT_FILE = "report.json"
TRAINING_RUN = "training_run.json"


class Int8Check(BaseModel):
    """The int8 ONNX model against the float weights it was made from, on the held-out rows."""

    rows: int
    label_agreement: float
    max_probability_difference: float
    float_accuracy: float
    int8_accuracy: float


class LocalFineTuneReport(BaseModel):
    artifact_tag: str
    created: bool
    base_model: str
    mode: str
    device: str
    runtime: str
    train_rows: int
    validation_rows: int
    test_rows: int
    steps: int
    best_step: int
    stopped_early: bool
    training_seconds: float
    examples_per_s: float
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    int8_check: Int8Check | None = None
    out: str


@dataclass(frozen=True)
class LocalFineTuneResult:
    artifact: ClassifierArtifact
    card: EvalCard
    predictions: list[Prediction]
    test: LabelledData
    report: LocalFineTuneReport
    gap: GapReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "tag": str(self.artifact.tag),
            "report": self.report.model_dump(mode="json"),
            "eval_card": self.card.model_dump(mode="json"),
            "gap": self.gap.model_dump(mode="json"),
        }


def _write_rows(data: LabelledData, path: Path) -> None:
    write_frame(pd.DataFrame({"text": data.texts, "label": data.labels}), path)


def encoder_artifact(
    name: str,
    splits: LocalSplits,
    recipe: LocalRecipe,
    trained: TrainedEncoder,
    *,
    seed: int,
    runtime: Literal["torch", "onnx_int8"],
) -> ClassifierArtifact:
    """The kept weights with their provenance, as an artifact not yet stored; the texts they saw
    (training and validation) travel with them, so ``eval`` can tell when it is measured on them."""
    mode = recipe.mode
    if mode == "auto":
        raise ValueError("the recipe's mode is decided for its data first (LocalRecipe.for_data)")
    _, base_sha256 = base_model_files(recipe.base_model)
    provenance = LocalTrainingProvenance(
        base_model=recipe.base_model,
        base_model_sha256=base_sha256,
        mode=mode,
        data=splits.data,
        hyperparameters=recipe.model_dump(mode="json", exclude={"base_model", "mode"}),
        seed=seed,
        curve=trained.curve,
        best_step=trained.best_step,
        stopped_early=trained.stopped_early,
        device=trained.device,
        validation_metrics=trained.validation_metrics,
    )
    backend: dict[str, Any] = {
        "provider": "sentence_transformers",
        "model": recipe.base_model,
        "max_tokens": recipe.max_tokens,
    }
    if runtime == "onnx_int8":
        backend["runtime"] = runtime
    spec = ClassifierSpec.from_dict(
        {
            "name": name,
            "task": {"labels": splits.labels, "ordinal": splits.ordinal},
            "technique": {
                "kind": "local_fine_tuned",
                "normalize": trained.normalize,
                "provenance": provenance.model_dump(mode="json"),
            },
            "backend": backend,
        },
        source="finetune start --local",
    )
    seen = sorted({text_key(t) for t in (*splits.train.texts, *splits.validation.texts)})
    files = {
        ENCODER_WEIGHTS: trained.weights,
        ENCODER_CONFIG: trained.config,
        ENCODER_TOKENIZER: trained.tokenizer,
        TRAINING_TEXTS: "\n".join(seen).encode(),
    }
    return ClassifierArtifact(spec=spec, model_files=files)


def _int8_check(artifact: ClassifierArtifact, test: LabelledData, served: list[Prediction]) -> Int8Check:
    """The float weights' predictions on the same rows, against the int8 model's (``served``)."""
    spec = artifact.spec
    exact_spec = spec.model_copy(update={"backend": spec.backend.model_copy(update={"runtime": None})})
    with Classifier(artifact=ClassifierArtifact(spec=exact_spec, model_files=artifact.model_files)) as exact:
        floats = exact.classify(test.texts)
    labels = spec.task.labels
    gaps = [
        abs((a.probabilities or {}).get(x, 0.0) - (b.probabilities or {}).get(x, 0.0))
        for a, b in zip(served, floats, strict=True)
        for x in labels
    ]
    truth = test.labels
    return Int8Check(
        rows=len(test.texts),
        label_agreement=float(np.mean([a.label == b.label for a, b in zip(served, floats, strict=True)])),
        max_probability_difference=max(gaps, default=0.0),
        float_accuracy=float(np.mean([p.label == t for p, t in zip(floats, truth, strict=True)])),
        int8_accuracy=float(np.mean([p.label == t for p, t in zip(served, truth, strict=True)])),
    )


def finetune_local(
    path: Path,
    *,
    name: str,
    out: Path,
    recipe: LocalRecipe | None = None,
    text_col: str = "text",
    label_col: str = "label",
    test_share: float = 0.2,
    seed: int = 0,
    sample: int | None = None,
    labelled_rows: int | None = None,
    device: str = "auto",
    runtime: Literal["torch", "onnx_int8"] = "torch",
    restart: bool = False,
    on_step: Callable[[str], None] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> LocalFineTuneResult:
    """Fine-tune, package, measure and report; the same call after a kill resumes the training."""
    say = on_step or (lambda _message: None)
    recipe = recipe or LocalRecipe()
    device = pick_device(device)
    base_model_files(recipe.base_model)  # a missing base model is refused before anything is written
    splits = split_for_training(
        path,
        text_col=text_col,
        label_col=label_col,
        test_share=test_share,
        seed=seed,
        sample=sample,
        labelled_rows=labelled_rows,
    )
    recipe = recipe.for_data(len(splits.train.texts), len(splits.labels))
    out.mkdir(parents=True, exist_ok=True)
    if restart:
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    _write_rows(splits.validation, out / VALIDATION_FILE)
    _write_rows(splits.test, out / TEST_FILE)
    say(
        f"fine-tuning {recipe.base_model} ({recipe.mode.replace('_', ' ')}) on {len(splits.train.texts)} "
        f"rows ({len(splits.validation.texts)} for validation, {len(splits.test.texts)} held out) on {device}"
    )
    train = train_few_labels if recipe.mode == "few_labels" else train_encoder
    trained = train(
        splits, recipe, seed=seed, device=device, checkpoints=out / "checkpoint", on_progress=on_progress
    )
    built = encoder_artifact(name, splits, recipe, trained, seed=seed, runtime=runtime)
    artifact, created = package(built.spec, model_files=built.model_files)
    say(f"measuring {artifact.tag} on {len(splits.test.texts)} held-out rows")
    with Classifier(artifact=artifact) as classifier:
        held_out = classifier.classify(splits.test.texts)
        card, predictions = evaluate(classifier, splits.test, random_state=seed, predictions=held_out)
        check = _int8_check(artifact, splits.test, held_out) if runtime == "onnx_int8" else None
        gap = gap_report(
            classifier,
            out / VALIDATION_FILE,
            reported=trained.validation_metrics,
            test=splits.test,
            test_predictions=held_out,
        )
    # The run's timing describes it without changing the model: an attachment, outside the version.
    timing = json.dumps(trained.timing(), indent=2).encode()
    artifact = attach_evaluation(
        str(artifact.tag),
        card,
        splits.test,
        predictions,
        source=path.name,
        seed=seed,
        also={TRAINING_RUN: timing},
    )
    report = LocalFineTuneReport(
        artifact_tag=str(artifact.tag),
        created=created,
        base_model=recipe.base_model,
        mode=recipe.mode,
        device=device,
        runtime=runtime,
        train_rows=len(splits.train.texts),
        validation_rows=len(splits.validation.texts),
        test_rows=len(splits.test.texts),
        steps=trained.steps,
        best_step=trained.best_step,
        stopped_early=trained.stopped_early,
        training_seconds=round(trained.seconds, 1),
        examples_per_s=round(trained.examples_per_s, 2),
        validation_metrics=trained.validation_metrics,
        test_metrics={k: v.value for k, v in card.metrics.items()},
        int8_check=check,
        out=str(out),
    )
    write_atomic(out / REPORT_FILE, report.model_dump_json(indent=2).encode())
    return LocalFineTuneResult(artifact, card, predictions, splits.test, report, gap)
