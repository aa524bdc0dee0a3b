"""A sweep of local fine-tunes on a real Ray cluster started here: ASHA stops trials, the best is packaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labelwise.packaging import load_artifact
from tests.conftest import YELP_CSV
from tests.test_cli import labelwise

pytestmark = pytest.mark.slow


def test_a_four_trial_local_sweep_stops_one_early_and_packages_the_best(tmp_path: Path) -> None:
    sweep = {
        "name": "tiny-local-sweep",
        "local": {"cpus_per_trial": 1, "recipe": {"max_tokens": 32, "epochs": 1, "evaluations_per_epoch": 4}},
        "data": {"path": str(YELP_CSV), "text_col": "text", "label_col": "stars", "sample": 200, "seed": 0},
        "test_share": 0.2,
        # A trial that cannot learn (both rates near zero) reports a higher loss at every rung.
        "space": {"learning_rate": {"grid": [5e-5, 1e-9]}, "head_learning_rate": {"grid": [1e-3, 1e-9]}},
        "search": "grid",
        "max_concurrent_jobs": 1,
        "early_stopping": {"grace_epochs": 0.25, "reduction_factor": 2},
        "metric": "weighted_f1",
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    result = labelwise(
        "finetune", "sweep", str(path), "--out", str(tmp_path / "out"), "--package-best", "--json"
    )
    shown = json.loads(result.stdout)
    board = shown["leaderboard"]
    assert len(board) == 4
    statuses = [row["status"] for row in board]
    assert "stopped early" in statuses and "succeeded" in statuses, board
    stopped = next(row for row in board if row["learning_rate"] == 1e-9 and row["head_learning_rate"] == 1e-9)
    assert stopped["status"] == "stopped early"
    # Ranked by the measured metric; the best trial is what was packaged.
    measured = [
        float(row["measured_weighted_f1"].split()[0]) for row in board if row["measured_weighted_f1"] != "-"
    ]
    assert measured == sorted(measured, reverse=True)
    artifact = load_artifact(shown["packaged"])
    assert artifact.spec.technique.kind == "local_fine_tuned"
    assert "eval_card.json" in artifact.attachments
