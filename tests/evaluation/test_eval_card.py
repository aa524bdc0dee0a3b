"""Evaluating an artifact, and its eval card attached, shown and protected."""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
import pytest

from labelwise.core import LabelwiseError
from labelwise.evaluation import EvalCard, LabelledData, evaluate, load_labelled
from labelwise.evaluation._evaluate import EVAL_CARD, DatasetRef
from labelwise.packaging import (
    ArtifactIntegrityError,
    Classifier,
    ClassifierSpec,
    attach,
    load_artifact,
    package,
)
from tests.conftest import YELP_CSV, FakeBackend, spec_dict
from tests.test_cli import labelwise

STARS = ["1", "2", "3", "4", "5"]


def _stars_spec(name: str) -> ClassifierSpec:
    return ClassifierSpec.from_dict(
        spec_dict(
            name=name,
            task={"labels": STARS, "ordinal": True},
            technique={"kind": "zero_shot", "template": "{text}"},
        )
    )


def test_load_labelled_samples_and_checks_labels(tmp_path: Path) -> None:
    data = load_labelled(YELP_CSV, text_col="text", label_col="stars", label_set=STARS, sample=40, seed=3)
    assert len(data.texts) == len(data.labels) == 40
    assert set(data.labels) <= set(STARS)
    again = load_labelled(YELP_CSV, text_col="text", label_col="stars", label_set=STARS, sample=40, seed=3)
    assert again.texts == data.texts and again.dataset == data.dataset
    assert data.dataset.rows == 5_000 and len(data.dataset.sha256) == 64
    bad = tmp_path / "bad.csv"
    bad.write_text("text,stars\nok,5\nmeh,six\n")
    with pytest.raises(LabelwiseError, match="not labels of the classifier: six"):
        load_labelled(bad, text_col="text", label_col="stars", label_set=STARS)
    with pytest.raises(LabelwiseError, match="no column 'rating'.*--label-col"):
        load_labelled(bad, text_col="text", label_col="rating", label_set=STARS)


def test_eval_card_round_trip_without_changing_the_version() -> None:
    artifact, _ = package(_stars_spec("eval-card"))
    data = load_labelled(YELP_CSV, text_col="text", label_col="stars", label_set=STARS, sample=40, seed=1)
    backend = FakeBackend()
    # Right on the first 30 items, one star off on the last 10.
    backend.enqueue(*data.labels[:30], *[str(max(1, int(s) - 1)) for s in data.labels[30:]])
    classifier = Classifier(artifact=artifact, backend=backend, max_concurrency=1)
    card, predictions = evaluate(classifier, data, n_resamples=200, random_state=0)
    expected_accuracy = 30 / 40 + sum(s == "1" for s in data.labels[30:]) / 40
    assert card.metrics["accuracy"].value == pytest.approx(expected_accuracy)
    assert card.metrics["off_by_one_accuracy"].value == pytest.approx(1.0)
    assert card.metrics["accuracy"].low <= card.metrics["accuracy"].value <= card.metrics["accuracy"].high
    assert "rmse" in card.metrics and "brier_score" not in card.metrics  # no probabilities in generate mode
    assert card.baseline["accuracy"] > 0 and card.dataset.sample == 40

    stored = attach(artifact.tag, EVAL_CARD, card.model_dump_json(indent=2).encode())
    assert stored.tag == artifact.tag  # the version describes behaviour; the card does not change it
    loaded = EvalCard.model_validate_json(load_artifact(artifact.tag).attachments[EVAL_CARD])
    assert loaded == card

    shown = json.loads(labelwise("models", "show", str(artifact.tag), "--json").stdout)
    assert shown["eval_card"]["metrics"]["accuracy"]["value"] == pytest.approx(expected_accuracy)
    assert "accuracy" in labelwise("models", "show", str(artifact.tag)).stdout

    path = Path(bentoml.models.get(str(artifact.tag)).path) / EVAL_CARD
    path.write_text(path.read_text().replace('"value": 0.', '"value": 0.9'))
    with pytest.raises(ArtifactIntegrityError, match="eval_card.json"):
        load_artifact(artifact.tag)


def test_evaluating_on_the_few_shot_examples_is_warned_of() -> None:
    examples = [{"text": "cold soup", "label": "1"}, {"text": "best pizza", "label": "5"}]
    spec = ClassifierSpec.from_dict(
        spec_dict(
            name="few-shot-leak",
            task={"labels": STARS, "ordinal": True},
            technique={"kind": "few_shot", "template": "{examples}\n{text}", "examples": examples},
        )
    )
    artifact, _ = package(spec)
    data = LabelledData(
        texts=["cold soup", "fine place", "best pizza", "meh"],
        labels=["1", "3", "5", "2"],
        dataset=DatasetRef(name="d", sha256="0" * 64, rows=4, evaluated=4, sample=None, seed=0,
                           text_col="text", label_col="stars"),
    )  # fmt: skip
    backend = FakeBackend()
    backend.enqueue("1", "3", "5", "2")
    card, _ = evaluate(
        Classifier(artifact=artifact, backend=backend, max_concurrency=1), data, n_resamples=100
    )
    assert len(card.warnings) == 1 and card.warnings[0].startswith("2 of 4 evaluation texts are among")
