"""Prompt experiments: a tiny grid on the local model, and the leaderboard, MLflow and --package-best."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from labelwise.evaluation._experiment import ExperimentSpec, log_to_mlflow, run_experiment
from labelwise.packaging import load_artifact
from labelwise.reports import write_leaderboard
from tests.conftest import EXAMPLES, REPO, YELP_CSV
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise

STARS = ["1", "2", "3", "4", "5"]


def _grid(tmp_path: Path, base: str, **extra: object) -> Path:
    grid = {
        "name": "tiny",
        "base": base,
        "data": {"path": str(YELP_CSV), "text_col": "text", "label_col": "stars", "sample": 8, "seed": 4},
        "templates": {
            "plain": "Rate this Yelp review with 1 to 5 stars.\nReview: {text}\nStars: ",
            "shots": "Rate Yelp reviews with 1 to 5 stars.\n\n{examples}\n\nReview: {text}\nStars: ",
        },
        "example_sets": {"k": [1, 2], "seeds": [0], "pool_size": 50},
        "n_resamples": 200,
        **extra,
    }
    path = tmp_path / "grid.yaml"
    import yaml

    path.write_text(yaml.safe_dump(grid))
    return path


def test_shipped_experiment_file_is_valid() -> None:
    experiment, root = ExperimentSpec.from_yaml(EXAMPLES / "yelp-prompt-experiment.yaml")
    assert (root / experiment.base).is_file() and (
        root / experiment.data.path
    ).resolve() == YELP_CSV.resolve()


def test_bad_experiment_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nbase: b.yaml\ndata: {path: d.csv}\ntemplates: {}\ntemperature: [0]\n")
    result = labelwise("experiment", str(path), check=False)
    assert result.returncode == 2
    assert "templates" in result.stderr and "did you mean 'temperatures'" in result.stderr


@pytest.mark.slow
@pytest.mark.local_llm
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the 'local' extra")
def test_tiny_grid_on_the_local_model(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text((EXAMPLES / "yelp-zero-shot.yaml").read_text())
    grid = _grid(tmp_path, "base.yaml")
    result = labelwise("experiment", str(grid), "--out", str(tmp_path / "out"), "--package-best")
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert len(board["rows"]) == 3  # plain, shots k=1, shots k=2
    scores = [row["card"]["metrics"]["weighted_f1"]["value"] for row in board["rows"]]
    assert scores == sorted(scores, reverse=True)
    sample_texts = set(pd.read_csv(YELP_CSV).sample(n=8, random_state=4)["text"])
    for row in board["rows"]:
        examples = row["spec"]["technique"].get("examples", [])
        assert len(examples) == row["candidate"]["k"]
        assert not {e["text"] for e in examples} & sample_texts  # no example is a test item
    csv = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(csv["kind"]) == ["candidate"] * 3 + ["most_frequent_baseline"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2  # F1 by candidate, F1 by k
    best_tag = board["rows"][0]["candidate"]["tag"]
    assert f"packaged the best candidate as {best_tag}" in result.stdout
    assert "eval_card.json" in load_artifact(best_tag).attachments


def test_leaderboard_and_mlflow_on_a_fake_backend(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="needs the 'mlflow' extra")
    import yaml

    # The fake answers "5" to one wording and "1" to the other, so the ranking is known.
    def answer(prompt: str) -> str:
        return "5" if prompt.startswith("Rate this") else "1"

    with FakeOpenAIServer(answer=answer) as fake:
        base = {
            "name": "fake-base",
            "task": {"labels": STARS, "ordinal": True},
            "technique": {"kind": "zero_shot", "template": "{text}"},
            "backend": {"provider": "openai_compatible", "model": "m", "base_url": fake.base_url},
        }
        (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
        experiment, root = ExperimentSpec.from_yaml(
            _grid(tmp_path, "base.yaml", example_sets={"k": [1], "seeds": [0, 1]})
        )
        board = run_experiment(experiment, root)
    assert [row.candidate.name for row in board.rows][0] == "plain k=0 t=0.0"
    assert all(row.card.metrics["coverage"].value == 1.0 for row in board.rows)
    files = write_leaderboard(board, tmp_path / "out")
    assert all(f.is_file() for f in files)
    experiment_id = log_to_mlflow(
        board, f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=tmp_path / "mlartifacts"
    )
    import mlflow

    runs = mlflow.search_runs(experiment_ids=[experiment_id])
    assert len(runs) == len(board.rows) + 1
    assert set(runs["params.template"].dropna()) == {"plain", "shots"}
    assert "metrics.weighted_f1_low" in runs.columns
    assert REPO.is_dir()
