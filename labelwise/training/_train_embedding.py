"""Training an embedding classifier: embed, choose a head by cross-validation, package, evaluate.

The held-out split is never seen by the head search; its metrics (the eval card) are measured
through the packaged artifact, the way the service and the batch runner will use it. A TF-IDF +
logistic regression baseline is fitted and measured on the same split, as the bar to clear.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..backends import BackendSpec, Embedder
from ..core import LabelwiseError, read_table, text_key
from ..evaluation import (
    DatasetRef,
    EvalCard,
    LabelledData,
    attach_evaluation,
    evaluate,
    file_sha256,
    split_labelled,
)
from ..evaluation import _metrics as m
from ..packaging import (
    HEAD_FILE,
    TRAINING_TEXTS,
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    Prediction,
    as_label,
    dump_head,
)
from ..packaging import package as package_artifact
from ._head import DEFAULT_FAMILIES, HeadChoice, fit_head

__all__ = ["TrainingReport", "TrainingResult", "train_embedding"]


class TrainingReport(BaseModel):
    artifact_tag: str
    embedder: str
    train_rows: int
    test_rows: int
    seed: int
    head_family: str
    head_params: dict[str, Any]
    cv_weighted_f1: float
    candidates: list[dict[str, Any]]
    test_accuracy: float
    test_weighted_f1: float
    tfidf_baseline: dict[str, float]
    embedded_texts: int
    embedding_seconds: float
    prediction_seconds: float
    prediction_embedded: int = 0
    """Held-out texts embedded while predicting; the others came from the embedding cache."""
    duplicates_removed: int = 0
    """Rows whose text repeats an earlier row's, left out before the split."""

    @property
    def embedding_texts_per_s(self) -> float:
        return self.embedded_texts / self.embedding_seconds if self.embedding_seconds else float("nan")

    @property
    def prediction_texts_per_s(self) -> float | None:
        """Texts per second of prediction that embedded its texts; ``None`` when all were cached
        (a rate of cache lookups says nothing of the classifier's speed)."""
        if not self.prediction_embedded or not self.prediction_seconds:
            return None
        return self.prediction_embedded / self.prediction_seconds


@dataclass(frozen=True)
class TrainingResult:
    """A trained embedding classifier: the packaged artifact, measured on the held-out rows."""

    artifact: ClassifierArtifact
    card: EvalCard
    predictions: list[Prediction]
    """The held-out rows' predictions, in the order of ``test``."""
    test: LabelledData
    report: TrainingReport


def _tfidf_baseline(
    train: LabelledData, test: LabelledData, labels: Sequence[str], seed: int
) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    predicted = model.fit(train.texts, train.labels).predict(test.texts).tolist()
    return {
        "accuracy": m.accuracy(test.labels, predicted),
        "weighted_f1": m.weighted_f1(test.labels, predicted, labels=labels),
    }


def _ordered_labels(values: Sequence[str]) -> tuple[list[str], bool]:
    """Labels sorted; numbers (stars) numerically and then taken as ordinal."""
    unique = sorted(set(values))
    try:
        return sorted(unique, key=float), True
    except ValueError:
        return unique, False


def _with_total(on_embedded: Callable[..., None], total: int, count: int, *, cached: bool = False) -> None:
    on_embedded(count, total, cached=cached)


@dataclass(frozen=True)
class Split:
    train: LabelledData
    test: LabelledData
    labels: list[str]
    ordinal: bool
    repeated: int


@dataclass(frozen=True)
class _Fitted:
    choice: HeadChoice
    embedder_id: str
    embedded_texts: int
    embedding_seconds: float


def read_and_split(
    path: Path, *, text_col: str, label_col: str, test_size: float, seed: int, sample: int | None
) -> Split:
    """The labelled rows (a seeded sample), held-out rows first, one row per text."""
    frame = read_table(path, required={text_col: "--text-col", label_col: "--label-col"})
    total = len(frame)
    frame = frame.dropna(subset=[text_col, label_col])
    if sample is not None and sample < len(frame):
        frame = frame.sample(n=sample, random_state=seed)
    texts = frame[text_col].astype(str).tolist()
    truth = frame[label_col].map(as_label).tolist()
    labels, ordinal = _ordered_labels(truth)
    if len(labels) < 2:
        raise LabelwiseError(f"{path}: column {label_col!r} holds fewer than two labels")
    dataset = DatasetRef(name=path.name, sha256=file_sha256(path), rows=total, evaluated=len(texts),
                         sample=sample, seed=seed, text_col=text_col, label_col=label_col)  # fmt: skip
    # A text in both parts would be measured on what the head was fitted to: the split keeps
    # one row per text (the first).
    train, test = split_labelled(
        LabelledData(texts=texts, labels=truth, dataset=dataset), test_size=test_size, seed=seed
    )
    return Split(train, test, labels, ordinal, len(texts) - len(train.texts) - len(test.texts))


def _embed_and_fit(
    train: LabelledData,
    embedder: BackendSpec,
    *,
    families: tuple[str, ...],
    folds: int,
    seed: int,
    say: Callable[[str], None],
    on_embedded: Callable[..., None] | None,
) -> _Fitted:
    """Embed the training texts (through the shared cache) and choose a head by cross-validation."""
    encoder = Embedder.with_default_cache(embedder)
    say(f"embedding {len(train.texts)} training texts with {encoder.id}")
    started = time.perf_counter()
    total_texts = len(train.texts)
    vectors = encoder.embed(
        train.texts,
        on_progress=None if on_embedded is None else functools.partial(_with_total, on_embedded, total_texts),
    )
    embedding_seconds = time.perf_counter() - started
    started = time.perf_counter()
    choice = fit_head(
        vectors, train.labels, families=families, folds=folds, seed=seed,
        on_family=lambda family, fits: say(f"searching {family} heads ({fits} fits of {folds}-fold CV)"),
    )  # fmt: skip
    say(
        f"chose {choice.family} {choice.params} (cross-validated weighted F1 {choice.cv_weighted_f1:.3f}; "
        f"search took {time.perf_counter() - started:.1f} s)"
    )
    return _Fitted(choice, encoder.id, encoder.embedded, embedding_seconds)


def _package(name: str, embedder: BackendSpec, split: Split, fitted: _Fitted) -> ClassifierArtifact:
    """The chosen head packaged with its spec and the keys of the texts it was fitted to."""
    choice = fitted.choice
    spec = ClassifierSpec.from_dict(
        {
            "name": name,
            "task": {"labels": split.labels, "ordinal": split.ordinal},
            "technique": {
                "kind": "embedding",
                "head": {
                    "family": choice.family,
                    "params": choice.params,
                    "cv_weighted_f1": choice.cv_weighted_f1,
                    "training_rows": len(split.train.texts),
                },
            },  # fmt: skip
            "backend": embedder.model_dump(mode="json", exclude_none=True),
        },
        source="train-embedding",
    )
    # The training texts' keys travel with the artifact, so `eval` can tell when it is measured
    # on texts its head was fitted to.
    seen = "\n".join(sorted({text_key(t) for t in split.train.texts})).encode()
    artifact, _ = package_artifact(
        spec, model_files={HEAD_FILE: dump_head(choice.estimator), TRAINING_TEXTS: seen}
    )
    return artifact


def train_embedding(
    path: Path,
    *,
    name: str,
    embedder: BackendSpec,
    text_col: str = "text",
    label_col: str = "label",
    test_size: float = 0.2,
    seed: int = 0,
    sample: int | None = None,
    families: tuple[str, ...] = DEFAULT_FAMILIES,
    folds: int = 5,
    on_step: Callable[[str], None] | None = None,
    on_embedded: Callable[..., None] | None = None,
) -> TrainingResult:
    """Fit on a seeded stratified split of ``path``, package, and measure on the held-out part.

    The steps: read and split; embed and choose a head; package; measure through the artifact;
    attach the eval card and what monitoring needs (``attach_evaluation``). ``on_step(message)``
    hears of each stage as it starts; ``on_embedded(count, total, cached=...)`` of the training
    texts as they are embedded.
    """
    say = on_step or (lambda _message: None)
    split = read_and_split(
        path, text_col=text_col, label_col=label_col, test_size=test_size, seed=seed, sample=sample
    )
    if split.repeated:
        say(f"left out {split.repeated} repeated texts")
    train, test = split.train, split.test
    fitted = _embed_and_fit(
        train, embedder, families=families, folds=folds, seed=seed, say=say, on_embedded=on_embedded
    )
    artifact = _package(name, embedder, split, fitted)
    say(f"measuring {artifact.tag} on {len(test.texts)} held-out texts")
    with Classifier(artifact=artifact) as classifier:
        started = time.perf_counter()
        held_out = classifier.classify(test.texts)
        prediction_seconds = time.perf_counter() - started
        prediction_embedded = classifier.technique_.texts_embedded
        card, predictions = evaluate(classifier, test, random_state=seed, predictions=held_out)
    choice = fitted.choice
    report = TrainingReport(
        artifact_tag=str(artifact.tag),
        embedder=fitted.embedder_id,
        train_rows=len(train.texts),
        test_rows=len(test.texts),
        seed=seed,
        head_family=choice.family,
        head_params=choice.params,
        cv_weighted_f1=choice.cv_weighted_f1,
        candidates=choice.candidates,
        test_accuracy=card.metrics["accuracy"].value,
        test_weighted_f1=card.metrics["weighted_f1"].value,
        tfidf_baseline=_tfidf_baseline(train, test, split.labels, seed),
        embedded_texts=fitted.embedded_texts,
        embedding_seconds=fitted.embedding_seconds,
        prediction_seconds=prediction_seconds,
        prediction_embedded=prediction_embedded,
        duplicates_removed=split.repeated,
    )
    artifact = attach_evaluation(str(artifact.tag), card, test, predictions, source=path.name, seed=seed)
    return TrainingResult(artifact=artifact, card=card, predictions=predictions, test=test, report=report)
