"""The few-labels mode: contrastive body fine-tuning, then a logistic-regression head (as SetFit does).

With 8-64 examples a label, a new linear head trained end to end sees too few examples; pairs
of texts are plentiful (n texts give about n^2 pairs). The body learns that texts of one label
are near and texts of different labels far (cosine-similarity loss on seeded pairs, trained by
sentence-transformers' own trainer, which checkpoints and resumes), then a logistic regression
is fitted on the body's normalised mean-pooled vectors. Its coefficients are the linear head of
the one encoder format, so the artifact serves as any local fine-tune does.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backends import EncoderClassifier, EncoderTokenizer, by_length, config_file, padded, weights_file
from ..core import LabelwiseError
from ..evaluation import LabelledData
from ._local_loop import TrainedEncoder, TrainProgress, base_model_files, metrics_of
from ._local_recipe import LocalRecipe, LocalSplits

__all__ = ["contrastive_pairs", "train_few_labels"]


def contrastive_pairs(data: LabelledData, pairs_per_text: int, seed: int) -> dict[str, list[Any]]:
    """Seeded pairs, half of one label (1.0) and half of two (0.0), ``pairs_per_text`` per text."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    by_label = {label: np.flatnonzero(labels == label) for label in set(data.labels)}
    others = {label: np.flatnonzero(labels != label) for label in by_label}
    first, second, similar = [], [], []
    for i, label in enumerate(data.labels):
        for k in range(pairs_per_text):
            pool = by_label[label] if k % 2 == 0 else others[label]
            if not len(pool):
                continue
            first.append(data.texts[i])
            second.append(data.texts[int(rng.choice(pool))])
            similar.append(1.0 if k % 2 == 0 else 0.0)
    return {"sentence1": first, "sentence2": second, "label": similar}


def _pooled(
    model: EncoderClassifier, tokenizer: EncoderTokenizer, texts: list[str], device: str
) -> np.ndarray:
    model.eval()
    ids = tokenizer.ids(texts)
    vectors = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    with torch.inference_mode():
        for rows in by_length(ids, 32):
            inputs = {k: torch.from_numpy(v).to(device) for k, v in padded([ids[i] for i in rows]).items()}
            vectors[rows] = model.pooled(**inputs).cpu().numpy()
    return vectors


def _progress_callback(on_progress: Callable[[TrainProgress], None] | None, started: float) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if on_progress is not None and state.max_steps:
                per_step = (time.perf_counter() - started) / max(1, state.global_step)
                on_progress(
                    TrainProgress(
                        state.global_step,
                        state.max_steps,
                        float(state.epoch or 0),
                        seconds_left=per_step * (state.max_steps - state.global_step),
                    )
                )

    return Progress()


def train_few_labels(
    splits: LocalSplits,
    recipe: LocalRecipe,
    *,
    seed: int,
    device: str,
    checkpoints: Path,
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> TrainedEncoder:
    """Contrastive body fine-tuning on pairs of ``splits.train``, then the logistic-regression head."""
    try:
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    except ImportError:
        raise LabelwiseError(
            "mode few_labels needs the finetune extra: pip install 'labelwise[finetune]'"
        ) from None
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    torch.manual_seed(seed)
    location, _ = base_model_files(recipe.base_model)
    body = SentenceTransformer(str(location), device=device, local_files_only=True)
    body.max_seq_length = recipe.max_tokens
    pairs = Dataset.from_dict(contrastive_pairs(splits.train, recipe.pairs_per_text, seed))
    steps = max(1, int(np.ceil(recipe.epochs * len(pairs) / recipe.batch_size)))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=recipe.batch_size,
        num_train_epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        warmup_steps=int(recipe.warmup_share * steps),
        weight_decay=recipe.weight_decay,
        seed=seed,
        data_seed=seed,
        save_strategy="steps",
        save_steps=max(1, steps // 4),
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
        logging_strategy="no",
        use_cpu=device == "cpu",
    )
    trainer = SentenceTransformerTrainer(
        model=body,
        args=args,
        train_dataset=pairs,
        loss=CosineSimilarityLoss(body),
        callbacks=[_progress_callback(on_progress, started)],
    )
    resume = any(checkpoints.glob("checkpoint-*"))
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's summary line; stdout holds results
        trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - started
    normalize = any(type(module).__name__ == "Normalize" for module in body)
    model = EncoderClassifier(body[0].auto_model, len(splits.labels), normalize=normalize).to(device)
    tokenizer_json = (location / "tokenizer.json").read_bytes()
    tokenizer = EncoderTokenizer(tokenizer_json, recipe.max_tokens)
    index = {label: i for i, label in enumerate(splits.labels)}
    target = np.asarray([index[label] for label in splits.train.labels])
    head = LogisticRegression(max_iter=2000, random_state=seed)
    head.fit(_pooled(model, tokenizer, splits.train.texts, device), target)
    weight = np.zeros((len(splits.labels), model.head.in_features), dtype=np.float32)
    bias = np.zeros(len(splits.labels), dtype=np.float32)
    if len(head.classes_) == 2:  # one logit against zero gives the same softmax as the sigmoid
        weight[head.classes_[1]], bias[head.classes_[1]] = head.coef_[0], head.intercept_[0]
    else:
        weight[head.classes_], bias[head.classes_] = head.coef_, head.intercept_
    # Labels the head never saw keep a very low logit rather than an even chance.
    bias[np.setdiff1d(np.arange(len(splits.labels)), head.classes_)] = -30.0
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(weight))
        model.head.bias.copy_(torch.from_numpy(bias))
    model = model.cpu().eval()
    vectors = _pooled(model, tokenizer, splits.validation.texts, "cpu")
    with torch.no_grad():
        logits = model.head(torch.from_numpy(vectors))
    truth = np.asarray([index[label] for label in splits.validation.labels])
    valid_loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(truth)))
    predicted = logits.argmax(dim=1).numpy()
    point = {
        "step": float(steps),
        "epoch": float(recipe.epochs),
        "valid_loss": valid_loss,
        "valid_accuracy": float(np.mean(predicted == truth)),
    }
    return TrainedEncoder(
        weights=weights_file(model),
        config=config_file(model),
        tokenizer=tokenizer_json,
        curve=[point],
        best_step=steps,
        stopped_early=False,
        steps=steps,
        device=device,
        seconds=time.perf_counter() - started,
        examples_trained=2 * steps * recipe.batch_size,
        train_seconds=train_seconds,
        validation_metrics=metrics_of(truth, predicted, len(splits.labels)),
        normalize=normalize,
    )
