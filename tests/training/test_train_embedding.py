"""Embedding classifiers and few-shot nearest selection: training, artifacts, caching, safety."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest

from labelwise.backends import BackendSpec, Embedder, EmbeddingCache
from labelwise.batch import score_dataframe
from labelwise.core import SpecError
from labelwise.evaluation import LabelledData, evaluate
from labelwise.packaging import (
    ArtifactError,
    ArtifactIntegrityError,
    Classifier,
    ClassifierSpec,
    load_artifact,
    package,
)
from labelwise.packaging._head import dump_head, load_head
from labelwise.training import TrainingResult, train_embedding
from tests.conftest import YELP_CSV, fake_server_spec, yelp_sample
from tests.fake_openai import FakeOpenAIServer

MINILM = BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _fake_embedder(fake: FakeOpenAIServer) -> BackendSpec:
    return BackendSpec(
        provider="openai_compatible", base_url=fake.base_url, model="fake-embed",
        max_retries=1, backoff_initial_s=0.01, backoff_max_s=0.05,
    )  # fmt: skip


def test_cache_is_shared_and_vectors_are_unit_length(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    texts = ["Great tacos.", "Rude staff, cold food.", "Great tacos."]
    first = Embedder(MINILM, cache=cache)
    vectors = first.embed(texts)
    assert vectors.shape == (3, 384) and first.embedded == 2  # the repeated text is embedded once
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = Embedder(MINILM, cache=EmbeddingCache(tmp_path / "embeddings.sqlite"))
    assert np.array_equal(again.embed(texts), vectors) and again.embedded == 0
    assert vectors[0] @ vectors[1] < 0.5  # different meanings are not near


def test_embeddings_through_an_openai_compatible_endpoint(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    before = fake.requests
    embedder = Embedder(_fake_embedder(fake), cache=EmbeddingCache(tmp_path / "e.sqlite"), batch_size=2)
    vectors = embedder.embed(["good food", "bad food", "good good food"])
    assert fake.requests - before == 2  # batches of two
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]
    fake.fail_next(503)  # retried, then answered
    assert embedder.embed(["brand new text"]).shape == (1, 32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    data = tmp_path_factory.mktemp("train") / "yelp.csv"
    yelp_sample(300, seed=4).to_csv(data, index=False)
    return train_embedding(
        data, name="yelp-embed-test", embedder=MINILM, label_col="stars", seed=0,
        families=("logistic_regression", "linear_svm"), folds=3,
    )  # fmt: skip


def test_train_embedding_packages_an_evaluated_classifier(trained: TrainingResult) -> None:
    artifact, card, test, report = trained.artifact, trained.card, trained.test, trained.report
    assert report.train_rows == 240 and report.test_rows == 60  # seeded stratified 80/20
    assert report.head_family in ("logistic_regression", "linear_svm")
    assert {c["family"] for c in report.candidates} == {"logistic_regression", "linear_svm"}
    assert "head.skops" in artifact.content_files()
    assert artifact.spec.task.labels == ["1", "2", "3", "4", "5"] and artifact.spec.task.ordinal
    # Better than always answering the most frequent label, on data the head never saw.
    assert card.metrics["weighted_f1"].value > card.baseline["weighted_f1"] + 0.1
    assert report.tfidf_baseline["weighted_f1"] > 0
    classifier = Classifier.load(str(artifact.tag))
    proba = classifier.predict_proba(test.texts[:5])
    assert proba.shape == (5, 5) and np.allclose(proba.sum(axis=1), 1.0)
    assert classifier.predict(test.texts[:5]).tolist() == classifier.predict(test.texts[:5]).tolist()
    assert classifier.classify([" "])[0].reason == "empty_text"


def test_embedding_artifacts_score_in_batch(trained: TrainingResult) -> None:
    artifact = trained.artifact
    frame = pd.DataFrame({"review": yelp_sample(20, seed=9)["text"].tolist() + [""]})
    scored = score_dataframe(frame, str(artifact.tag), text_col="review")
    assert (scored["status"] != "error").all()
    assert set(scored["label"].dropna()) <= set("12345") and scored["status"].tolist()[-1] == "empty"
    assert scored["probabilities"].notna().sum() == 20


def test_a_modified_or_foreign_head_is_refused(trained: TrainingResult) -> None:
    artifact = trained.artifact
    head = Path(bentoml.models.get(str(artifact.tag)).path) / "head.skops"
    original = head.read_bytes()
    head.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        with pytest.raises(ArtifactIntegrityError, match="head.skops"):
            load_artifact(str(artifact.tag))
    finally:
        head.write_bytes(original)
    from sklearn.preprocessing import FunctionTransformer

    hostile = dump_head(FunctionTransformer(func=eval))
    with pytest.raises(ArtifactIntegrityError, match="not trusted"):
        load_head(hostile, where="test")


def test_spec_rules_for_embeddings() -> None:
    base = fake_server_spec("x", "http://127.0.0.1:9/v1").model_dump(mode="json", exclude_none=True)
    with pytest.raises(SpecError, match="embeddings only"):
        ClassifierSpec.from_dict({**base, "backend": {"provider": "sentence_transformers", "model": "m"}})
    embedding = {**base, "technique": {"kind": "embedding", "head": {"family": "logistic_regression"}},
                 "backend": MINILM.model_dump(mode="json", exclude_none=True)}  # fmt: skip
    with pytest.raises(ArtifactError, match="train-embedding"):
        package(ClassifierSpec.from_dict(embedding))
    assert ClassifierSpec.from_dict(embedding).scored_by == "classifier_head"
    with pytest.raises(SpecError, match="scoring does not apply to technique embedding"):
        ClassifierSpec.from_dict({**embedding, "scoring": "logprobs"})
    few_shot = {"kind": "few_shot", "template": "{examples}\nText: {text}\nLabel:", "selection": "nearest",
                "examples": [{"text": "good", "label": "positive"}]}  # fmt: skip
    with pytest.raises(SpecError, match="needs technique.k and technique.embedder"):
        ClassifierSpec.from_dict({**base, "technique": few_shot})


def _last_example_label(prompt: str) -> str:
    """The fake model answers with the label of the example shown last (nearest to the input)."""
    return re.findall(r"Label: (\w+)", prompt)[-1]  # the input's own "Label:" is still empty


def test_nearest_few_shot_puts_the_most_similar_examples_in_the_prompt(tmp_path: Path) -> None:
    pool = [
        {"text": "the pizza crust was burnt", "label": "negative"},
        {"text": "lovely friendly waiter", "label": "positive"},
        {"text": "parking was fine", "label": "neutral"},
        {"text": "pizza crust perfect and crispy", "label": "positive"},
    ]
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return _last_example_label(prompt)

    with FakeOpenAIServer(answer=answer) as server:
        spec = fake_server_spec("nearest", server.base_url).model_dump(mode="json", exclude_none=True)
        embedder = _fake_embedder(server).model_dump(mode="json", exclude_none=True)
        spec["technique"] = {
            "kind": "few_shot", "template": "{examples}\n\nText: {text}\nLabel:",
            "selection": "nearest", "k": 2, "examples": pool, "embedder": embedder,
        }  # fmt: skip
        artifact, _ = package(ClassifierSpec.from_dict(spec))
        assert "pool_embeddings.npy" in artifact.content_files()
        classifier = Classifier.load(str(artifact.tag))
        labels = classifier.predict(["friendly waiter", "crust was burnt", "parking"]).tolist()
        again = classifier.predict(["friendly waiter"]).tolist()
    assert labels == ["positive", "negative", "neutral"] and again == ["positive"]
    # Requests run concurrently, so pick the input's prompt by its text, not by arrival order.
    first = next(p for p in prompts if p.endswith("Text: friendly waiter\nLabel:"))
    assert first.count("Label:") == 3  # k=2 examples and the input
    shown = re.findall(r"Text: (.*)\nLabel: \w+", first)
    assert shown[-1] == "lovely friendly waiter"  # the most similar example sits next to the input


@pytest.mark.slow
def test_yelp_embedding_classifier_beats_the_most_frequent_label(tmp_path: Path) -> None:
    """A larger seeded run on the real data (bench/ measures more rows)."""
    data = tmp_path / "yelp.csv"
    pd.read_csv(YELP_CSV).sample(n=1000, random_state=0).to_csv(data, index=False)
    result = train_embedding(
        data, name="yelp-embed-1k", embedder=MINILM, label_col="stars", families=("logistic_regression",)
    )
    card, report = result.card, result.report
    # The most frequent label (5 stars) scores a weighted F1 near 0.2; the interval clears it.
    assert card.metrics["weighted_f1"].low > card.baseline["weighted_f1"] + 0.05
    assert report.test_rows == 200


def test_repeated_texts_are_left_out_before_the_split(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    """A text in both parts would be measured on what the head was fitted to."""
    words = {"negative": ["rude", "cold", "awful"], "positive": ["great", "lovely", "tasty"]}
    rows = [(f"{w} visit {i}", label) for label, ws in words.items() for w in ws for i in range(8)]
    repeated = rows[:10] + [(rows[10][0], "negative" if rows[10][1] == "positive" else "positive")]
    data = tmp_path / "repeats.csv"
    pd.DataFrame(rows + repeated, columns=["text", "label"]).to_csv(data, index=False)
    spec = BackendSpec(provider="openai_compatible", base_url=fake.base_url, model="fake-embed")
    result = train_embedding(data, name="dedupe", embedder=spec, families=("logistic_regression",), folds=2)
    artifact, card, test, report = result.artifact, result.card, result.test, result.report
    assert report.duplicates_removed == 11
    assert report.train_rows + report.test_rows == len(rows)
    assert len(set(test.texts)) == len(test.texts)
    # The held-out part is apart from training: no warning. Training rows are not.
    assert card.warnings == []
    everything = LabelledData(
        texts=[t for t, _ in rows], labels=[lab for _, lab in rows], dataset=test.dataset
    )
    again, _ = evaluate(Classifier(artifact=artifact), everything, n_resamples=100)
    assert again.warnings and again.warnings[0].startswith(
        f"{report.train_rows} of {len(rows)} evaluation texts"
    )
    assert report.prediction_embedded == report.test_rows and report.prediction_texts_per_s
    # Trained again, every held-out text comes from the cache: no speed is claimed for lookups.
    cached = train_embedding(
        data, name="dedupe", embedder=spec, families=("logistic_regression",), folds=2
    ).report
    assert (cached.prediction_embedded, cached.prediction_texts_per_s) == (0, None)
