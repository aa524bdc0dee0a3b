"""What early stopping saves in ``labelwise finetune sweep``, against the same grid run to the end.

The fake fine-tuning API of the test harness (its optimum: 3 epochs, learning-rate multiplier
1.0, batch size 8) serves a seeded sample of Yelp reviews. The same grid is swept twice, each
time as its own ``labelwise finetune sweep`` process:
  (a) with ASHA early stopping, stopped trials' jobs cancelled (the default);
  (b) the peer: ``early_stopping: null``, every job trained to its end, as a loop over the grid does.
It prints, for each: wall time, examples trained over all jobs (what a provider bills), the
jobs cancelled, the API calls by name, and the best configuration with its measured weighted F1.

    .venv/bin/python bench/finetune_sweep.py [--rows 300] [--wide]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
from tests.fake_openai import FakeOpenAIServer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "LABELWISE_BENCH_OPENAI_KEY"


def _sweep(folder: Path, server: FakeOpenAIServer, rows: int, *, wide: bool, early: bool) -> Path:
    spec = yaml.safe_load((REPO / "examples" / "yelp-fine-tuned.yaml").read_text())
    spec["backend"] |= {"base_url": server.base_url, "api_key_env": KEY_ENV, "max_retries": 1}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    space = {
        "n_epochs": {"grid": [1, 3, 5] if wide else [1, 3]},
        "learning_rate_multiplier": {"grid": [0.3, 1.0, 4.0] if wide else [1.0, 4.0]},
        "batch_size": {"grid": [8, 32]},
    }
    sweep = {
        "name": "bench-sweep",
        "base": "spec.yaml",
        "data": {"path": str(REPO / "data" / "yelp-sample.csv"), "label_col": "stars", "sample": rows},
        "space": space,
        "max_concurrent_jobs": 2,
        "early_stopping": {"grace_epochs": 1, "reduction_factor": 2} if early else None,
        "poll_interval_s": 0.05,
        "n_resamples": 200,
    }
    path = folder / f"sweep-{'asha' if early else 'full'}.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def run(rows: int, *, wide: bool, early: bool) -> dict[str, Any]:
    frame = pd.read_csv(REPO / "data" / "yelp-sample.csv")
    stars = {str(t).strip(): str(s) for t, s in frame[["text", "stars"]].itertuples(index=False)}
    with FakeOpenAIServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.fine_tuning.truth = lambda prompt: stars.get(prompt.strip())
        server.fine_tuning.seconds_per_example = 0.006
        folder = Path(tmp)
        path = _sweep(folder, server, rows, wide=wide, early=early)
        env = {**os.environ, KEY_ENV: "sk-bench-not-a-real-key", "BENTOML_HOME": str(folder / "bentoml")}
        started = time.perf_counter()
        command = ["finetune", "sweep", str(path), "--out", str(folder / "out"), "--json"]
        result = subprocess.run(
            [sys.executable, "-m", "labelwise.cli", *command],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        seconds = time.perf_counter() - started
        board = json.loads(result.stdout)["leaderboard"]
        jobs = server.fine_tuning.jobs.values()
        examples = sum(
            server.fine_tuning._steps_done(job) * job["hyperparameters"]["batch_size"] for job in jobs
        )
        best = board[0]
        return {
            "sweep": "ASHA" if early else "full grid (peer)",
            "trials": len(board),
            "stopped": sum(r["status"] == "stopped early" for r in board),
            "cancelled": sum(job["status"] == "cancelled" for job in jobs),
            "examples trained": examples,
            "wall s": round(seconds, 1),
            "best": f"{best['n_epochs']} ep, lr x{best['learning_rate_multiplier']}, bs {best['batch_size']}",
            "best F1": best["measured_weighted_f1"],
            "calls": dict(server.fine_tuning.calls),
            "board": board,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--wide", action="store_true", help="3 x 3 x 2 = 18 trials instead of 8")
    args = parser.parse_args()
    asha = run(args.rows, wide=args.wide, early=True)
    full = run(args.rows, wide=args.wide, early=False)
    summary = pd.DataFrame(
        [{k: v for k, v in r.items() if k not in ("calls", "board")} for r in (asha, full)]
    )
    print(summary.to_string(index=False))
    print(f"\nASHA / full grid: examples trained {asha['examples trained'] / full['examples trained']:.2f}x, "
          f"wall time {asha['wall s'] / full['wall s']:.2f}x")  # fmt: skip
    for result in (asha, full):
        print(f"\n{result['sweep']} API calls: {result['calls']}")
    shown = ["rank", "n_epochs", "learning_rate_multiplier", "batch_size", "status", "job_id", "steps",
             "reported_valid_loss", "reported_accuracy", "measured_weighted_f1", "measured_mae"]  # fmt: skip
    print("\nASHA leaderboard:\n" + pd.DataFrame(asha["board"])[shown].to_string(index=False))


if __name__ == "__main__":
    main()
