"""Responsible-AI analysis: cohort metrics against a hand computation, errors, calibration, probes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from labelwise.batch._cohorts import text_descriptors
from labelwise.batch._probes import run_probes
from labelwise.batch._rai import (
    RaiData,
    SmallGroupWarning,
    calibration_analysis,
    cohort_metrics,
    error_analysis,
)
from labelwise.evaluation import expected_calibration_error
from labelwise.packaging import ClassifierArtifact, ClassifierSpec, package
from tests.conftest import fake_server_spec, yelp_sample
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise

LABELS = ["negative", "neutral", "positive"]


def _scored_frame(seed: int = 0) -> pd.DataFrame:
    """Region A: 30 of 40 right; region B: 20 of 40 right; region C: 5 items, all right."""
    rng = np.random.default_rng(seed)
    rows = []
    for region, size, right in (("A", 40, 30), ("B", 40, 20), ("C", 5, 5)):
        for i in range(size):
            truth = LABELS[rng.integers(3)]
            wrong = LABELS[(LABELS.index(truth) + 1 + rng.integers(2)) % 3]
            predicted = truth if i < right else wrong
            top = 0.5 + rng.random() / 2
            proba = {label: (top if label == predicted else (1 - top) / 2) for label in LABELS}
            rows.append(
                {"text": f"{region} review {i}", "truth": truth, "region": region, "label": predicted,
                 "probabilities": json.dumps(proba), "status": "ok"}
            )  # fmt: skip
    rows.append({"text": "lost", "truth": "neutral", "region": "A", "label": None, "status": "error"})
    return pd.DataFrame(rows)


@pytest.fixture
def scored(tmp_path: Path) -> Path:
    path = tmp_path / "scored.csv"
    _scored_frame().to_csv(path, index=False)
    return path


def test_metric_frame_equals_a_hand_computation(scored: Path) -> None:
    data = RaiData.load(scored, label_col="truth", cohort_cols=["region"])
    assert data.left_out == {"scoring failed": 1}
    with pytest.warns(SmallGroupWarning, match="'C'|C hold fewer than 30"):
        result = cohort_metrics(data, "region", min_group_size=30, n_boot=50)
    frame = _scored_frame()
    frame = frame[frame["status"] == "ok"]
    groups = {g["group"]: g for g in result["groups"]}
    for region, part in frame.groupby("region"):
        expected_accuracy = float((part["truth"] == part["label"]).mean())
        expected_f1 = f1_score(
            part["truth"], part["label"], labels=LABELS, average="weighted", zero_division=0
        )
        got = groups[str(region)]
        assert got["count"] == len(part)
        assert got["metrics"]["accuracy"]["value"] == pytest.approx(expected_accuracy)
        assert got["metrics"]["weighted_f1"]["value"] == pytest.approx(expected_f1)
    assert groups["A"]["metrics"]["accuracy"]["value"] == pytest.approx(0.75)
    a = groups["A"]["metrics"]["accuracy"]
    assert a["low"] <= 0.75 <= a["high"] and a["high"] - a["low"] > 0.05
    # C is too small: flagged, no interval, and left out of the between-group comparison.
    assert groups["C"]["small"] and groups["C"]["metrics"]["accuracy"]["low"] is None
    assert result["compared_groups"] == ["A", "B"]
    assert result["difference"]["accuracy"]["value"] == pytest.approx(0.25)
    assert result["ratio"]["accuracy"]["value"] == pytest.approx(0.5 / 0.75)
    low, high = result["difference"]["accuracy"]["low"], result["difference"]["accuracy"]["high"]
    assert low < 0.25 < high


def test_the_gap_between_equal_groups_can_be_zero(tmp_path: Path) -> None:
    """Three groups right equally often: the largest gap's interval covers 0 and its p-value is
    large; a bootstrap of the maximum absolute difference would exclude 0."""
    rng = np.random.default_rng(3)
    rows = []
    for region in ("A", "B", "C"):
        for i in range(60):
            truth = LABELS[i % 3]
            predicted = truth if i % 5 else LABELS[(i + 1) % 3]  # 48 of 60 right in every region
            rows.append({"text": f"{region} {i}", "truth": truth, "region": region, "label": predicted,
                         "status": "ok", "noise": rng.random()})  # fmt: skip
    path = tmp_path / "equal.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = cohort_metrics(
        RaiData.load(path, label_col="truth", cohort_cols=["region"]), "region", n_boot=200
    )
    gap = result["difference"]["accuracy"]
    assert gap["value"] == pytest.approx(0.0)
    assert gap["low"] <= 0.0 <= gap["high"] and gap["p_value"] > 0.5
    assert all(g["metrics"]["accuracy"]["low"] is not None for g in result["groups"])


def test_error_analysis_and_calibration(scored: Path) -> None:
    data = RaiData.load(scored, label_col="truth", cohort_cols=["region"])
    with pytest.warns(SmallGroupWarning):
        cohorts = [cohort_metrics(data, "region", n_boot=20)]
    errors = error_analysis(data, cohorts)
    assert [(g["group"], round(g["value"], 2)) for g in errors["worst_groups"]] == [("B", 0.5), ("A", 0.75)]
    matrix = np.asarray(errors["confusion_matrix"])
    assert matrix.sum() == 85 and np.trace(matrix) == 55
    first = errors["confused_pairs"][0]
    assert first["count"] == matrix[LABELS.index(first["true"]), LABELS.index(first["predicted"])]
    assert first["count"] == max(matrix[i, j] for i in range(3) for j in range(3) if i != j)
    frame = _scored_frame()
    confused_texts = set(
        frame[(frame["truth"] == first["true"]) & (frame["label"] == first["predicted"])]["text"]
    )
    assert first["examples"] and set(first["examples"]) <= confused_texts

    calibration = calibration_analysis(data)
    assert calibration is not None
    assert sum(b["count"] for b in calibration["bins"]) == 85
    assert calibration["expected_calibration_error"] == pytest.approx(
        expected_calibration_error(data.truth, data.proba, labels=data.labels)
    )
    # Confidence was drawn from [0.5, 1) whatever the outcome: accuracy 55/85 lags it in the top bins.
    assert calibration["bins"][-1]["confidence"] > calibration["bins"][-1]["accuracy"]


def test_automatic_cohorts_describe_the_texts() -> None:
    texts = yelp_sample(400)["text"].tolist()
    cohorts = text_descriptors(texts)
    assert set(cohorts.columns) == {"length", "exclamation", "negation", "digits", "all_caps_word"}
    lengths = cohorts["length"].value_counts()
    assert len(lengths) == 4 and lengths.min() >= 80  # quartiles of the word count
    shouting = [t for t, g in zip(texts, cohorts["exclamation"], strict=True) if g == "with '!'"]
    assert all("!" in t for t in shouting) and len(shouting) == sum("!" in t for t in texts)
    for name in cohorts["length"].cat.categories:
        low, high = (int(x) for x in re.findall(r"\d+", name)[:2])
        inside = [len(t.split()) for t, g in zip(texts, cohorts["length"], strict=True) if g == name]
        assert min(inside) == low and max(inside) == high


def _text_of(prompt: str) -> str:
    return prompt.split(" of: ", 1)[1].rsplit("\nAnswer:", 1)[0]


def toy(prompt: str) -> str:
    """Case-sensitive 'Great' wins; otherwise double spaces mean neutral; otherwise negative."""
    text = _text_of(prompt)
    if "Great" in text:
        return "positive"
    return "neutral" if "  " in text else "negative"


TOY_TEXTS = [
    "Great", "Great fun", "so bad and odd but Great", "it was too hot yet Great",
    "bad food", "the soup was cold", "meh", "not good at all", "too slow", "we left early",
]  # fmt: skip


@pytest.fixture
def toy_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer=toy) as server:
        yield server


def test_text_probes_flip_exactly_where_the_toy_classifier_is_fragile(toy_server: FakeOpenAIServer) -> None:
    artifact = ClassifierArtifact(spec=fake_server_spec("toy", toy_server.base_url))
    truth = [toy(f"x of: {t}\nAnswer:") for t in TOY_TEXTS]
    results = {r.probe: r for r in run_probes(artifact, TOY_TEXTS, truth, sample=10, seed=3)}
    # Typos hit "Great" (the only word of four letters or more in those texts); casing breaks it;
    # double spaces turn the five other multi-word texts neutral; halving drops the trailing "Great".
    expected = {
        "typos": 4,
        "lowercase": 4,
        "uppercase": 4,
        "whitespace": 5,
        "truncation": 2,
        "label_order": 0,
    }
    assert {name: r.flips for name, r in results.items()} == expected
    assert results["whitespace"].flip_rate == pytest.approx(0.5)
    assert results["truncation"].accuracy_before == 1.0 and results["truncation"].accuracy_after == 0.8
    assert results["lowercase"].low < 0.4 < results["lowercase"].high
    example = results["truncation"].examples[0]
    assert (example["text"], example["changed"]) == ("so bad and odd but Great", "so bad and")
    assert (example["before"], example["after"]) == ("positive", "negative")


def few_shot_toy(prompt: str) -> str:
    """Copies the first example's label, or the first label listed, when the text asks it to."""
    text = prompt.rsplit("Text: ", 1)[1].rsplit("\nLabel:", 1)[0]
    if "copy example" in text:
        return re.findall(r"Label: (\w+)", prompt)[0]
    if "copy label" in text:
        return re.search(r"\((\w+),", prompt).group(1)  # type: ignore[union-attr]
    return "neutral"


def test_prompt_probes_reorder_examples_and_labels() -> None:
    with FakeOpenAIServer(answer=few_shot_toy) as server:
        spec = ClassifierSpec.from_dict(
            {
                **fake_server_spec("toy-few-shot", server.base_url).model_dump(
                    mode="json", exclude_none=True
                ),
                "technique": {
                    "kind": "few_shot",
                    "template": "Classify ({labels}).\n\n{examples}\n\nText: {text}\nLabel:",
                    "examples": [
                        {"text": "awful", "label": "negative"},
                        {"text": "superb", "label": "positive"},
                    ],
                },
            }
        )
        texts = [f"copy example {i}" for i in range(3)] + [f"copy label {i}" for i in range(3)]
        texts += [f"plain {i}" for i in range(4)]
        results = {r.probe: r for r in run_probes(ClassifierArtifact(spec=spec), texts, sample=10)}
    assert results["example_order"].flips == 3 and results["example_order"].kind == "prompt"
    assert results["label_order"].flips == 3
    assert {(e["before"], e["after"]) for e in results["example_order"].examples} == {
        ("negative", "positive")
    }
    assert results["example_order"].accuracy_before is None  # no true labels given


def test_rai_command_writes_a_report_with_plots_and_probes(tmp_path: Path) -> None:
    with FakeOpenAIServer(answer=toy) as server:
        spec = fake_server_spec("rai-cli", server.base_url)
        artifact, _ = package(spec)
        # The true labels are in "label", the name batch score gives its predictions by default.
        frame = pd.DataFrame({"text": TOY_TEXTS * 6, "label": ["positive"] * 60})
        frame.to_csv(tmp_path / "data.csv", index=False)
        data, scored = str(tmp_path / "data.csv"), str(tmp_path / "s.csv")
        refused = labelwise("batch", "score", str(artifact.tag), data, "--out", scored, check=False)
        assert refused.returncode == 2 and "--prefix" in refused.stderr and not Path(scored).exists()
        labelwise("batch", "score", str(artifact.tag), data, "--out", scored, "--prefix", "predicted_")
        assert pd.read_csv(scored)["label"].eq("positive").all()  # the input's column is untouched
        result = labelwise(
            "batch", "rai", scored, "--label-col", "label",
            "--out", str(tmp_path / "rai.html"), "--probes", "60", "--n-boot", "20",
        )  # fmt: skip
    assert "probe whitespace: 50.0% of 60 predictions flipped" in result.stdout
    assert "warning: cohort" in result.stdout  # 60 items cut into small text-descriptor groups
    report = json.loads((tmp_path / "rai.json").read_text())
    assert report["artifact_tag"] == str(artifact.tag)
    assert report["overall"]["metrics"]["accuracy"]["value"] == pytest.approx(24 / 60)
    assert [c["cohort"] for c in report["cohorts"]][0] == "length"
    html = (tmp_path / "rai.html").read_text()
    # One plot per cohort, the confusion matrix, and the flip rates (no probabilities: no calibration).
    assert html.count("data:image/png;base64,") == len(report["cohorts"]) + 2
    assert report["calibration"] is None


def test_bad_input_is_refused_clearly(scored: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.html")
    wrong = labelwise("batch", "rai", str(scored), "--label-col", "label", "--out", out, check=False)
    assert wrong.returncode == 2 and "--label-col" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = labelwise("batch", "rai", str(scored), "--label-col", "stars", "--out", out, check=False)
    assert missing.returncode == 2 and "no column 'stars'" in missing.stderr
    cohort = labelwise(
        "batch", "rai", str(scored), "--label-col", "truth", "--cohort", "city", "--out", out, check=False
    )
    assert cohort.returncode == 2 and "--cohort" in cohort.stderr
    assert not (tmp_path / "r.html").exists()
