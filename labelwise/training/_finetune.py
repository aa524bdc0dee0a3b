"""Fine-tuning data, and the gap between the metrics a fine-tuning service reports and ours.

Export renders every example with the spec's own prompt, so the model is trained on exactly
what the served artifact will send. The validation split is stratified and sized to measure
something (see ``validation_size``). The gap report replays the validation file and a test set
through the deployed artifact and names what explains the difference.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..backends import openai_encoding
from ..core import LabelwiseError, write_atomic
from ..evaluation import Estimate, LabelledData, evaluate_predictions, load_labelled, stratified_split
from ..packaging import Classifier, ClassifierSpec, Prediction, Scorer, prompt_scorer
from ._jobs import DEFAULT_USD_PER_MILLION_TRAINING_TOKENS

__all__ = ["ExportReport", "GapReport", "export_finetune", "gap_report", "validation_size"]

# Worst-case (p = 0.5) 95% interval of +-5 points on accuracy needs 1.96^2 * 0.25 / 0.05^2 items.
_MIN_FOR_5_POINTS = math.ceil(1.96**2 * 0.25 / 0.05**2)  # 385
_MIN_PER_LABEL = 30
VALIDATION_RULE = (
    "max(20% of rows, 385 rows for a +-5 point 95% interval on accuracy, 30 per label), "
    "at most half of the rows; stratified by label"
)


def validation_size(n_items: int, n_labels: int) -> int:
    """How many items to hold out for validation.

    The larger of 20% of the data, 385 items (a 95% interval of at most +-5 points on
    accuracy) and 30 per label (so per-label metrics exist), capped at half the data so that
    training keeps the majority. A service's default of a few percent is what made reported
    metrics look 5 points better than the deployed model in practice.
    """
    wanted = max(math.ceil(0.2 * n_items), _MIN_FOR_5_POINTS, _MIN_PER_LABEL * n_labels)
    return min(wanted, n_items // 2)


class SplitStats(BaseModel):
    rows: int
    labels: dict[str, int]
    tokens: int
    sha256: dict[str, str]


class ExportReport(BaseModel):
    spec: str
    model: str
    seed: int
    validation_rule: str
    train: SplitStats
    validation: SplitStats
    epochs: int
    training_tokens: int
    estimated_cost_usd: float


def _chat_tokens(encoding: Any, messages: list[dict[str, str]]) -> int:
    # OpenAI's published count for chat: 3 tokens per message, 3 to prime the reply.
    return sum(3 + len(encoding.encode(m["content"])) for m in messages) + 3


def _rows(scorer: Scorer, data: LabelledData, index: np.ndarray) -> list[tuple[list[dict[str, str]], str]]:
    system = scorer.system
    out = []
    for i in index:
        messages = [{"role": "system", "content": system}] if system else []
        messages += [
            {"role": "user", "content": scorer.prompt(data.texts[i])},
            {"role": "assistant", "content": data.labels[i]},
        ]
        out.append((messages, data.labels[i]))
    return out


def _write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> str:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    write_atomic(path, payload)
    return hashlib.sha256(payload).hexdigest()


def export_finetune(
    data: LabelledData,
    spec: ClassifierSpec,
    out_dir: Path,
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    epochs: int = 3,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
    seed: int = 0,
    validation_share: float | None = None,
) -> ExportReport:
    """Write train/validation JSONL in chat and prompt/completion formats, and a report.

    ``validation_share`` overrides the size rule (``validation_size``); the gap report then says
    when the split is too small to measure much.
    """
    labels = spec.task.labels
    if validation_share is None:
        n_val, rule = validation_size(len(data.labels), len(labels)), VALIDATION_RULE
    else:
        n_val = min(round(validation_share * len(data.labels)), len(data.labels) - 1)
        rule = f"{validation_share:.0%} of rows, as asked; stratified by label"
    if n_val < 1:
        raise LabelwiseError("too few rows to split into training and validation")
    train_idx, val_idx = stratified_split(data.labels, test_size=n_val, seed=seed)
    scorer = prompt_scorer(spec)
    encoding = openai_encoding(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name, index in (("train", np.sort(train_idx)), ("validation", np.sort(val_idx))):
        rows = _rows(scorer, data, index)
        chat = [{"messages": messages} for messages, _ in rows]
        completion = [
            {
                "prompt": "\n\n".join(m["content"] for m in messages[:-1]),
                "completion": label,
            }
            for messages, label in rows
        ]
        splits[name] = SplitStats(
            rows=len(rows),
            labels=dict(sorted(Counter(label for _, label in rows).items())),
            tokens=sum(_chat_tokens(encoding, messages) for messages, _ in rows),
            sha256={
                f"{name}.chat.jsonl": _write_jsonl(out_dir / f"{name}.chat.jsonl", chat),
                f"{name}.completion.jsonl": _write_jsonl(out_dir / f"{name}.completion.jsonl", completion),
            },
        )
    training_tokens = splits["train"].tokens * epochs
    report = ExportReport(
        spec=spec.name,
        model=model,
        seed=seed,
        validation_rule=rule,
        train=splits["train"],
        validation=splits["validation"],
        epochs=epochs,
        training_tokens=training_tokens,
        estimated_cost_usd=training_tokens * usd_per_million_training_tokens / 1e6,
    )
    (out_dir / "export.json").write_text(report.model_dump_json(indent=2))
    return report


class MeasuredMetrics(BaseModel):
    rows: int
    metrics: dict[str, dict[str, float]]


class GapReport(BaseModel):
    artifact_tag: str
    reported: dict[str, float]
    validation_as_served: MeasuredMetrics
    validation_as_trained: MeasuredMetrics
    test: MeasuredMetrics | None
    findings: list[str]


def _read_chat_file(path: Path) -> list[tuple[str | None, str, str]]:
    """(system, user prompt, assistant label) of each example in a chat fine-tuning file."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            by_role = {m["role"]: m["content"] for m in messages}
            rows.append((by_role.get("system"), by_role["user"], by_role["assistant"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LabelwiseError(f"{path}:{number} is not a chat fine-tuning example: {exc}") from None
    if not rows:
        raise LabelwiseError(f"{path} holds no examples")
    return rows


def _measure(
    labels_true: Sequence[str], predictions: Sequence[Prediction], spec: ClassifierSpec
) -> MeasuredMetrics:
    estimates: dict[str, Estimate] = evaluate_predictions(
        labels_true,
        [p.label for p in predictions],
        labels=spec.task.labels,
        ordinal=spec.task.ordinal,
        n_resamples=500,
        random_state=0,
    )
    return MeasuredMetrics(rows=len(labels_true), metrics={k: e.as_dict() for k, e in estimates.items()})


def gap_report(
    classifier: Classifier,
    validation_file: Path,
    *,
    reported: dict[str, float],
    test: LabelledData | None = None,
    test_predictions: Sequence[Prediction] | None = None,
) -> GapReport:
    """Replay the validation file (as trained and as the artifact serves it) and a test set
    (``test_predictions``: the classifier's predictions of it, where they are already made).

    A provider's model reads a chat fine-tuning file; a model fine-tuned here (no prompt) reads the
    validation rows as a table (``text``, ``label``), which it saw as it was trained.
    """
    spec = classifier.artifact_.spec
    if spec.technique.prompt_template is None:
        validation = load_labelled(
            validation_file, text_col="text", label_col="label", label_set=spec.task.labels
        )
        truth, as_served, mismatched = validation.labels, classifier.classify(validation.texts), 0
        as_trained = as_served
    else:
        truth, as_trained, as_served, mismatched = _replay_chat_file(classifier, validation_file)
    measured_served = _measure(truth, as_served, spec)
    measured_trained = measured_served if as_trained is as_served else _measure(truth, as_trained, spec)
    measured_test = None
    if test is not None:
        predicted = test_predictions if test_predictions is not None else classifier.classify(test.texts)
        measured_test = _measure(test.labels, predicted, spec)
    findings = _findings(
        spec,
        reported=reported,
        served=measured_served,
        trained=measured_trained,
        test=measured_test,
        mismatched=mismatched,
        rows=len(truth),
        validation_labels=truth,
        test_labels=test.labels if test else None,
    )
    return GapReport(
        artifact_tag=str(classifier.tag_),
        reported=reported,
        validation_as_served=measured_served,
        validation_as_trained=measured_trained,
        test=measured_test,
        findings=findings,
    )


def _replay_chat_file(
    classifier: Classifier, validation_file: Path
) -> tuple[list[str], list[Prediction], list[Prediction], int]:
    """The chat file's labels, its prompts classified as written and its texts as the artifact
    renders them, and how many prompts differ from what the artifact sends."""
    spec = classifier.artifact_.spec
    rows = _read_chat_file(validation_file)
    unknown = sorted({label for _, _, label in rows} - set(spec.task.labels))
    if unknown:
        raise LabelwiseError(f"{validation_file}: labels {unknown[:5]} are not labels of {classifier.tag_}")
    scorer = prompt_scorer(spec)
    regex = scorer.text_pattern()
    matches = [regex.match(prompt) for _, prompt, _ in rows]
    # Texts the artifact would have been given; unmatched prompts are sent whole as the text.
    texts = [m.group("text") if m else prompt for m, (_, prompt, _) in zip(matches, rows, strict=True)]
    as_trained = classifier.classify_prompts([(system, prompt) for system, prompt, _ in rows])
    mismatched = sum(m is None for m in matches) + sum(
        (system or None) != (scorer.system or None) for system, _, _ in rows
    )
    return [label for _, _, label in rows], as_trained, classifier.classify(texts), mismatched


def _value(measured: MeasuredMetrics | None, metric: str) -> float | None:
    if measured is None or metric not in measured.metrics:
        return None
    return measured.metrics[metric]["value"]


def _findings(
    spec: ClassifierSpec,
    *,
    reported: dict[str, float],
    served: MeasuredMetrics,
    trained: MeasuredMetrics,
    test: MeasuredMetrics | None,
    mismatched: int,
    rows: int,
    validation_labels: Sequence[str],
    test_labels: Sequence[str] | None,
) -> list[str]:
    findings = []
    for metric, value in sorted(reported.items()):
        measured = _value(test, metric) if test else _value(served, metric)
        if measured is not None:
            where = "the test set" if test else "the validation file as served"
            findings.append(
                f"{metric}: reported {value:.3f}, measured {measured:.3f} on {where} "
                f"({measured - value:+.3f})"
            )
    coverage = _value(served, "coverage")
    if coverage is not None and coverage < 1.0:
        findings.append(
            f"parse failures: {1 - coverage:.1%} of the served outputs were not a label; a service's "
            "token accuracy counts none of them as failures"
        )
    if mismatched:
        findings.append(
            f"template mismatch: {mismatched} of {rows} validation prompts differ from what the artifact "
            "sends (prompt text or system message), so the model sees another format than it was trained on"
        )
    served_acc, trained_acc = _value(served, "accuracy"), _value(trained, "accuracy")
    if served_acc is not None and trained_acc is not None and abs(trained_acc - served_acc) >= 0.02:
        findings.append(
            f"format effect: accuracy {trained_acc:.3f} with the training prompts vs {served_acc:.3f} with "
            "the artifact's prompts on the same items"
        )
    decoding = spec.decoding
    if decoding.temperature > 0 or (decoding.top_p is not None and decoding.top_p < 1):
        findings.append(
            f"sampling settings: temperature {decoding.temperature} / top_p {decoding.top_p} make "
            "predictions vary between runs; evaluate with temperature 0"
        )
    if rows < _MIN_FOR_5_POINTS:
        findings.append(
            f"small validation split: {rows} items give a 95% interval of about +-"
            f"{1.96 * math.sqrt(0.25 / rows):.2f} on accuracy; metrics on it are noisy"
        )
    if test_labels is not None:
        distance = _total_variation(validation_labels, test_labels, spec.task.labels)
        if distance >= 0.05:
            findings.append(
                f"split differences: the validation and test label distributions differ by {distance:.2f} "
                "(total variation); the validation split does not represent the test data"
            )
    return findings


def _total_variation(a: Sequence[str], b: Sequence[str], labels: Sequence[str]) -> float:
    ca, cb = Counter(a), Counter(b)
    return 0.5 * sum(abs(ca[label] / len(a) - cb[label] / len(b)) for label in labels)
