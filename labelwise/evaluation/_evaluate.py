"""Scoring an artifact on a labelled dataset and measuring it: the eval card."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.dummy import DummyClassifier

from .. import __version__
from ..core import LabelwiseError, read_table, text_key
from ..monitoring import attach_reference
from ..packaging import (
    Classifier,
    ClassifierArtifact,
    Prediction,
    as_label,
    probability_matrix,
    technique_for,
)
from . import _metrics as m
from ._stats import Estimate, bootstrap_interval

__all__ = [
    "DatasetRef",
    "EvalCard",
    "LabelledData",
    "Evaluation",
    "attach_evaluation",
    "evaluate",
    "evaluate_file",
    "evaluate_predictions",
    "load_labelled",
]

EVAL_CARD = "eval_card.json"
Metric = Callable[..., float]

# name -> (function, needs probabilities, higher is better)
METRICS: dict[str, tuple[Metric, bool, bool]] = {
    "accuracy": (m.accuracy, False, True),
    "macro_f1": (m.macro_f1, False, True),
    "weighted_f1": (m.weighted_f1, False, True),
    "coverage": (m.coverage, False, True),
}
ORDINAL_METRICS: dict[str, tuple[Metric, bool, bool]] = {
    "mae": (m.mae, False, False),
    "rmse": (m.rmse, False, False),
    "quadratic_weighted_kappa": (m.quadratic_weighted_kappa, False, True),
    "off_by_one_accuracy": (m.off_by_one_accuracy, False, True),
}
PROBABILITY_METRICS: dict[str, tuple[Metric, bool, bool]] = {
    "expected_calibration_error": (m.expected_calibration_error, True, False),
    "brier_score": (m.brier_score, True, False),
    "log_loss": (m.log_loss, True, False),
}


def higher_is_better(metric: str) -> bool:
    return {**METRICS, **ORDINAL_METRICS, **PROBABILITY_METRICS}[metric][2]


class DatasetRef(BaseModel):
    """Which data a measurement was made on, precisely enough to repeat it."""

    model_config = ConfigDict(frozen=True)

    name: str
    sha256: str
    rows: int
    evaluated: int
    sample: int | None
    seed: int
    text_col: str
    label_col: str


class MetricEstimate(BaseModel):
    value: float
    low: float
    high: float


class EvalCard(BaseModel):
    """Metrics with confidence intervals, measured on a named dataset, for one artifact."""

    artifact_tag: str | None
    dataset: DatasetRef
    labels: list[str]
    metrics: dict[str, MetricEstimate]
    baseline: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    confidence: float
    n_resamples: int
    created_at: str
    labelwise_version: str
    warnings: list[str] = []
    """What makes these figures less than honest (e.g. evaluation texts the artifact was built from)."""

    @classmethod
    def attached_to(cls, artifact: ClassifierArtifact) -> EvalCard | None:
        """The card stored with the artifact, if it has one."""
        data = artifact.attachments.get(EVAL_CARD)
        return None if data is None else cls.model_validate_json(data)


class LabelledData(BaseModel):
    """Texts and their true labels, with the reference to where they came from."""

    model_config = ConfigDict(frozen=True)

    texts: list[str]
    labels: list[str]
    dataset: DatasetRef

    def subset(self, rows: Sequence[int]) -> LabelledData:
        """These rows, in this order; the dataset reference counts them."""
        return LabelledData(
            texts=[self.texts[i] for i in rows],
            labels=[self.labels[i] for i in rows],
            dataset=self.dataset.model_copy(update={"evaluated": len(rows)}),
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def as_labels(values: pd.Series, *, label_set: Sequence[str], where: str) -> pd.Series:
    """True labels as label strings, refused when one is not in the classifier's label set."""
    labels = values.map(as_label)
    unknown = sorted(set(labels) - set(label_set))
    if unknown:
        raise LabelwiseError(
            f"{where} holds values that are not labels of the classifier: {', '.join(unknown[:10])}; "
            f"labels are {', '.join(label_set)}"
        )
    return labels


def load_labelled(
    path: Path,
    *,
    text_col: str,
    label_col: str,
    label_set: Sequence[str],
    sample: int | None = None,
    seed: int = 0,
    exclude_index: Sequence[int] = (),
) -> LabelledData:
    """Read a labelled table, check its labels, and take a seeded sample."""
    frame = read_table(path, required={text_col: "--text-col", label_col: "--label-col"})
    total = len(frame)
    frame = frame.dropna(subset=[text_col, label_col])
    if len(exclude_index):
        frame = frame.drop(index=[i for i in exclude_index if i in frame.index])
    if frame.empty:
        raise LabelwiseError(f"{path}: no row has both a {text_col!r} and a {label_col!r} value")
    labels = as_labels(frame[label_col], label_set=label_set, where=f"{path}: column {label_col!r}")
    if sample is not None and sample < len(frame):
        frame = frame.sample(n=sample, random_state=seed)
        labels = labels.loc[frame.index]
    return LabelledData(
        texts=frame[text_col].astype(str).tolist(),
        labels=labels.tolist(),
        dataset=DatasetRef(
            name=path.name,
            sha256=file_sha256(path),
            rows=total,
            evaluated=len(frame),
            sample=sample,
            seed=seed,
            text_col=text_col,
            label_col=label_col,
        ),
    )


def prediction_probabilities(predictions: Sequence[Prediction], labels: Sequence[str]) -> np.ndarray | None:
    """The predictions' probability matrix (NaN rows where none), or None when none has any."""
    if not any(p.probabilities for p in predictions):
        return None
    return probability_matrix([p.probabilities for p in predictions], labels)


def evaluate_predictions(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    *,
    labels: Sequence[str],
    ordinal: bool = False,
    y_proba: np.ndarray | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, Estimate]:
    """Every applicable metric with its bootstrap interval, on the same resamples."""
    true = np.asarray(list(y_true), dtype=object)
    pred = np.asarray(list(y_pred), dtype=object)
    chosen = {**METRICS, **(ORDINAL_METRICS if ordinal else {})}
    if y_proba is not None:
        chosen |= PROBABILITY_METRICS
    out: dict[str, Estimate] = {}
    for name, (metric, needs_proba, _) in chosen.items():

        def statistic(i: np.ndarray, metric: Metric = metric, needs_proba: bool = needs_proba) -> float:
            if needs_proba:
                return metric(true[i], y_proba[i], labels=labels)  # type: ignore[index]
            return metric(true[i], pred[i], labels=labels)

        out[name] = bootstrap_interval(
            statistic, len(true), n_resamples=n_resamples, confidence=confidence, random_state=random_state
        )
    return out


def evaluate(
    classifier: Classifier,
    data: LabelledData,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    predictions: Sequence[Prediction] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[EvalCard, list[Prediction]]:
    """Score ``data`` with ``classifier`` (unless ``predictions`` are given) and build its eval card."""
    spec = classifier.artifact_.spec
    labels = spec.task.labels
    if predictions is None:
        predictions = classifier.classify(data.texts, on_progress=on_progress)
    predictions = list(predictions)
    y_pred = [p.label for p in predictions]
    estimates = evaluate_predictions(
        data.labels,
        y_pred,
        labels=labels,
        ordinal=spec.task.ordinal,
        y_proba=prediction_probabilities(predictions, labels),
        n_resamples=n_resamples,
        confidence=confidence,
        random_state=random_state,
    )
    card = EvalCard(
        artifact_tag=str(classifier.tag_),
        dataset=data.dataset,
        labels=labels,
        metrics={k: MetricEstimate(value=e.value, low=e.low, high=e.high) for k, e in estimates.items()},
        baseline=most_frequent_baseline(data.labels, labels=labels, ordinal=spec.task.ordinal),
        per_class=m.per_class_report(data.labels, y_pred, labels=labels),
        confusion_matrix=m.confusion_matrix(data.labels, y_pred, labels=labels).tolist(),
        confidence=confidence,
        n_resamples=n_resamples,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        labelwise_version=__version__,
        warnings=_leakage(classifier.artifact_, data.texts),
    )
    return card, predictions


@dataclass(frozen=True)
class Evaluation:
    """An artifact measured on labelled data: the card, the data and each prediction."""

    card: EvalCard
    data: LabelledData
    predictions: list[Prediction]


def evaluate_file(
    tag: str,
    path: Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    sample: int | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
    concurrency: int = 16,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Load artifact ``tag``, read the labelled table at ``path`` and measure it (``labelwise eval``).

    ``on_start(message, rows)`` hears once the rows to score are known; ``on_progress(n)`` as
    texts finish.
    """
    with Classifier.load(tag, max_concurrency=concurrency) as classifier:
        data = load_labelled(
            path,
            text_col=text_col,
            label_col=label_col,
            label_set=classifier.artifact_.spec.task.labels,
            sample=sample,
            seed=seed,
        )
        if on_start is not None:
            on_start(f"scoring {data.dataset.evaluated} rows with {classifier.tag_}", data.dataset.evaluated)
        card, predictions = evaluate(
            classifier, data, n_resamples=n_resamples, random_state=seed, on_progress=on_progress
        )
    return Evaluation(card=card, data=data, predictions=predictions)


def _leakage(artifact: ClassifierArtifact, texts: Sequence[str]) -> list[str]:
    """A warning when evaluation texts are among those the artifact was built from."""
    seen = technique_for(artifact.spec).seen_text_keys(artifact.spec, artifact.model_files)
    overlap = sum(text_key(text) in seen for text in texts)
    if not overlap:
        return []
    return [
        f"{overlap} of {len(texts)} evaluation texts are among the texts {artifact.tag} was built from "
        "(its few-shot examples or training rows): on them it is measured on what it has seen, so "
        "the figures flatter it; evaluate on data kept apart"
    ]


def most_frequent_baseline(
    y_true: Sequence[str], *, labels: Sequence[str], ordinal: bool
) -> dict[str, float]:
    """Metrics of always answering the most frequent label (scikit-learn's DummyClassifier)."""
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y_true), 1)), list(y_true))
    y_pred = dummy.predict(np.zeros((len(y_true), 1))).tolist()
    chosen = {**METRICS, **(ORDINAL_METRICS if ordinal else {})}
    return {name: metric(list(y_true), y_pred, labels=labels) for name, (metric, _, _) in chosen.items()}


def attach_evaluation(
    tag: str,
    card: EvalCard,
    data: LabelledData,
    predictions: Sequence[Prediction],
    *,
    source: str | None = None,
    seed: int = 0,
    also: dict[str, bytes] | None = None,
) -> ClassifierArtifact:
    """Store the eval card with the artifact, with what monitoring it needs (``attach_reference``).

    After this the service can estimate accuracy without labels, replay the golden set and check
    drift against the data the card was measured on. ``source`` names that data (default: the
    card's dataset name); ``also`` attaches more files in the same write.
    """
    return attach_reference(
        tag,
        data.texts,
        predictions,
        data.labels,
        source=source or card.dataset.name,
        seed=seed,
        also={EVAL_CARD: card.model_dump_json(indent=2).encode(), **(also or {})},
    )
