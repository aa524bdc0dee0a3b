"""What successive halving saves in ``labelwise optimize``, against the full grid of the same candidates.

A fake OpenAI provider (20 ms an answer, OpenAI's token counts) serves a ticket-routing task
whose truth is encoded (tests/fake_prompt_truth.py): a third of the texts help as few-shot
examples, a third hurt, so each candidate's true accuracy is known. The same candidates
(templates x k x draws) are searched three ways, each as its own ``labelwise optimize`` process
timed from launch to exit:
  (a) the peer: ``--search grid``, every candidate on every selection row (no budget);
  (b) ``--search halving --budget-calls`` a third of (a)'s calls;
  (c) ``--search halving --budget-usd`` at gpt-4o-mini's prices, the same share of (a)'s cost.
It prints, for each: calls, wall time, cost, the winner with its test score, its true accuracy,
and the optimism with its interval; and for (b) and (c) the ``--dry-run`` estimate of calls and
cost beside what was spent.

    .venv/bin/python bench/optimize_search.py [--rows 1500] [--share 0.33]
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
from tests.fake_openai import FakeOpenAIServer  # noqa: E402
from tests.fake_prompt_truth import EXAMPLE, PLAIN, TEMPLATE, Truth, tickets_spec  # noqa: E402

KEY_ENV = "LABELWISE_BENCH_OPENAI_KEY"


def _world(folder: Path, server: FakeOpenAIServer, truth: Truth) -> tuple[Path, Path, Path]:
    data = truth.write_csv(folder / "tickets.csv")
    spec_path = tickets_spec(folder / "tickets.yaml", server.base_url, api_key_env=KEY_ENV)
    space = {"templates": {"plain": PLAIN, "shots": TEMPLATE, "shots-again": "Route it.\n\n" + TEMPLATE},
             "example_template": EXAMPLE, "k": [1, 3, 5], "draws": 5,
             "draw": ["random", "stratified"]}  # fmt: skip
    space_path = folder / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))
    return spec_path, data, space_path


def _optimize(args: list[str], server: FakeOpenAIServer) -> tuple[dict[str, Any], float, int]:
    before = server.requests
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "labelwise.cli", "optimize", *args, "--json"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout), elapsed, server.requests - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--share", type=float, default=0.33, help="Halving's budget, a share of the grid's.")
    parser.add_argument("--latency", type=float, default=0.02)
    options = parser.parse_args()
    truth = Truth.make(options.rows)
    os.environ[KEY_ENV] = "sk-bench"
    with (
        tempfile.TemporaryDirectory(prefix="labelwise-bench-") as tmp,
        FakeOpenAIServer(answer=truth.answer, latency_s=options.latency, contract=False) as server,
    ):
        folder = Path(tmp)
        os.environ["BENTOML_HOME"] = str(folder / "bentoml")
        spec, data, space = _world(folder, server, truth)
        common = [str(spec), str(data), "--label-col", "team", "--space", str(space), "--test-rows", "300",
                  "--selection-rows", "300", "--seed", "1", "--n-resamples", "300"]  # fmt: skip
        grid, grid_s, grid_calls = _optimize(
            [*common, "--search", "grid", "--out", str(folder / "grid")], server
        )
        calls_budget = int(options.share * grid_calls)
        usd_budget = round(options.share * grid["spend"]["cost_usd"], 6)
        runs: dict[str, tuple[dict[str, Any], float, int]] = {"grid (peer)": (grid, grid_s, grid_calls)}
        estimates: dict[str, dict[str, Any]] = {}
        for name, budget in (("halving, calls", ["--budget-calls", str(calls_budget)]),
                             ("halving, dollars", ["--budget-usd", str(usd_budget)])):  # fmt: skip
            dry = subprocess.run(
                [sys.executable, "-m", "labelwise.cli", "optimize", *common, *budget, "--dry-run", "--json"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            estimates[name] = json.loads(dry.stdout)
            runs[name] = _optimize([*common, *budget, "--out", str(folder / name.replace(", ", "-"))], server)
    print(f"{options.rows} tickets, {grid['estimate']['candidates']} candidates, 300 selection and 300 "
          f"test rows, {options.latency * 1000:.0f} ms an answer; budgets: {calls_budget} calls, "
          f"${usd_budget}")  # fmt: skip
    print(f"{'run':18} {'calls':>6} {'x grid':>7} {'wall s':>7} {'x grid':>7} {'cost $':>9} "
          f"{'test acc':>9} {'true acc':>9} {'optimism [95%]':>24}  winner")  # fmt: skip
    for name, (result, seconds, calls) in runs.items():
        examples = sorted(e["text"] for e in result["winner_spec"]["technique"].get("examples", []))
        o = result["optimism"]
        test = result["winner_card"]["metrics"]["accuracy"]["value"]
        winner = next(c["name"] for c in result["candidates"] if c["key"] == result["winner"])
        print(f"{name:18} {calls:>6} {calls / grid_calls:>7.2f} {seconds:>7.1f} {seconds / grid_s:>7.2f} "
              f"{result['spend']['cost_usd']:>9.5f} {test:>9.3f} {truth.accuracy(examples):>9.3f} "
              f"{o['value']:+.3f} [{o['low']:+.3f}, {o['high']:+.3f}]  {winner}")  # fmt: skip
    for name, estimate in estimates.items():
        spent = runs[name][0]["spend"]
        print(f"{name}: estimated {estimate['calls']} calls, ${estimate['cost_usd']:.5f} (at most "
              f"${estimate['cost_usd_high']:.5f}); "
              f"spent {spent['calls']} calls ({estimate['calls'] / spent['calls'] - 1:+.1%}), "
              f"${spent['cost_usd']:.5f} "
              f"({estimate['cost_usd'] / spent['cost_usd'] - 1:+.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
