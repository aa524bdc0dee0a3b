"""Fine-tuning export, and a gap report on a synthetic case whose cause is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelwise.evaluation import LabelledData
from labelwise.evaluation._evaluate import DatasetRef
from labelwise.packaging import Classifier, ClassifierSpec, package
from labelwise.training._finetune import export_finetune, gap_report, validation_size
from tests.fake_openai import FakeOpenAIServer

LABELS = ["negative", "neutral", "positive"]


def _data(n: int) -> LabelledData:
    labels = [LABELS[i % 3] for i in range(n)]
    return LabelledData(
        texts=[f"item {i} feels {label}" for i, label in enumerate(labels)],
        labels=labels,
        dataset=DatasetRef(
            name="synthetic",
            sha256="0" * 64,
            rows=n,
            evaluated=n,
            sample=None,
            seed=0,
            text_col="text",
            label_col="label",
        ),
    )


def _fine_tuned(name: str, prompt_format: str, base_url: str = "http://127.0.0.1:9/v1") -> ClassifierSpec:
    return ClassifierSpec.from_dict(
        {
            "name": name,
            "task": {"labels": LABELS},
            "technique": {
                "kind": "fine_tuned",
                "model_id": "ft:gpt-4o-mini-2024-07-18:acme::abc123",
                "system": "Classify the sentiment.",
                "prompt_format": prompt_format,
                "provenance": {
                    "base_model": "gpt-4o-mini-2024-07-18",
                    "reported_metrics": {"accuracy": 0.97},
                },
            },
            "backend": {"provider": "openai_compatible", "base_url": base_url, "max_retries": 0},
        }
    )


@pytest.mark.parametrize(
    ("rows", "labels", "expected"),
    [(10_000, 5, 2000), (1000, 5, 385), (500, 5, 250), (2000, 20, 600), (10, 2, 5)],
)
def test_validation_size_rule(rows: int, labels: int, expected: int) -> None:
    assert validation_size(rows, labels) == expected


def test_export_writes_stratified_splits_in_both_formats(tmp_path: Path) -> None:
    report = export_finetune(_data(90), _fine_tuned("ft-export", "Review: {text}"), tmp_path, seed=0)
    assert (report.train.rows, report.validation.rows) == (45, 45)
    assert report.validation.labels == {"negative": 15, "neutral": 15, "positive": 15}
    chat = [json.loads(line) for line in (tmp_path / "validation.chat.jsonl").read_text().splitlines()]
    assert chat[0]["messages"][0] == {"role": "system", "content": "Classify the sentiment."}
    assert chat[0]["messages"][1]["content"].startswith("Review: item ")
    assert chat[0]["messages"][2]["content"] in LABELS
    completion = json.loads((tmp_path / "train.completion.jsonl").read_text().splitlines()[0])
    assert completion["prompt"].startswith("Classify the sentiment.\n\nReview: item ")
    assert report.train.tokens > 45 * 10 and report.training_tokens == report.train.tokens * 3
    assert report.estimated_cost_usd == pytest.approx(report.training_tokens * 3.0 / 1e6)
    assert json.loads((tmp_path / "export.json").read_text())["validation"]["rows"] == 45
    train_texts = {
        json.loads(line)["messages"][1]["content"]
        for line in (tmp_path / "train.chat.jsonl").read_text().splitlines()
    }
    assert not train_texts & {m["messages"][1]["content"] for m in chat}  # no item in both splits


def trained_format_only(prompt: str) -> str:
    """A model that learnt its training format: it answers only prompts written that way."""
    if not prompt.startswith("Review: "):
        return "I am not sure."
    return next(label for label in LABELS if label in prompt)


def test_gap_report_names_the_template_mismatch(tmp_path: Path) -> None:
    export_finetune(_data(60), _fine_tuned("ft-train", "Review: {text}"), tmp_path, seed=0)
    with FakeOpenAIServer(answer=trained_format_only) as fake:
        # Deployed with another prompt format than the one it was trained on.
        deployed, _ = package(_fine_tuned("ft-deployed", "Text: {text}", fake.base_url))
        classifier = Classifier(artifact=deployed)
        report = gap_report(
            classifier, tmp_path / "validation.chat.jsonl", reported={"accuracy": 0.97}, test=_data(30)
        )
    assert report.validation_as_trained.metrics["accuracy"]["value"] == pytest.approx(1.0)
    assert report.validation_as_served.metrics["accuracy"]["value"] == pytest.approx(0.0)
    assert report.test is not None and report.test.metrics["coverage"]["value"] == pytest.approx(0.0)
    findings = "\n".join(report.findings)
    assert "template mismatch: 30 of 30 validation prompts differ" in findings
    assert "format effect: accuracy 1.000 with the training prompts vs 0.000" in findings
    assert "parse failures: 100.0%" in findings
    assert "accuracy: reported 0.970, measured 0.000 on the test set" in findings


def test_gap_report_without_a_mismatch_finds_none(tmp_path: Path) -> None:
    export_finetune(_data(60), _fine_tuned("ft-train-2", "Review: {text}"), tmp_path, seed=0)
    with FakeOpenAIServer(answer=trained_format_only) as fake:
        deployed, _ = package(_fine_tuned("ft-deployed-2", "Review: {text}", fake.base_url))
        report = gap_report(
            Classifier(artifact=deployed), tmp_path / "validation.chat.jsonl", reported={"accuracy": 0.97}
        )
    assert report.validation_as_served.metrics["accuracy"]["value"] == pytest.approx(1.0)
    assert not any("mismatch" in f or "parse failures" in f for f in report.findings)
    assert any("small validation split: 30 items" in f for f in report.findings)


def test_the_commands_default_training_price_is_the_libraries() -> None:
    from labelwise.cli._finetune import DEFAULT_PRICE
    from labelwise.training._jobs import DEFAULT_USD_PER_MILLION_TRAINING_TOKENS

    assert DEFAULT_PRICE == DEFAULT_USD_PER_MILLION_TRAINING_TOKENS
