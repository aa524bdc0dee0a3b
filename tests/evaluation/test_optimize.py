"""``labelwise optimize`` against a fake provider whose truth is encoded: the test sets which
examples help and which hurt, so the best candidate, each candidate's true accuracy and the
winner's true optimism are known."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from labelwise.core import LabelwiseError
from labelwise.evaluation import (
    OPTIMIZATION,
    EvalCard,
    OptimizeResult,
    OptimizeSettings,
    SearchSpace,
    estimate_optimize,
    load_labelled,
    optimize,
)
from labelwise.evaluation._optimize_plan import make_splits
from labelwise.evaluation._search_space import make_candidates
from labelwise.packaging import ClassifierSpec, load_artifact
from labelwise.reports import log_optimize_to_mlflow, write_optimize_report
from tests.conftest import EXAMPLES, YELP_CSV
from tests.fake_openai import FakeOpenAIServer
from tests.fake_prompt_truth import EXAMPLE, PLAIN, TEAMS, TEMPLATE, Truth, tickets_spec


@pytest.fixture()
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Truth, FakeOpenAIServer, Path, Path]]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    truth = Truth.make(1200)
    data = truth.write_csv(tmp_path / "tickets.csv")
    with FakeOpenAIServer(answer=truth.answer) as fake:
        spec_path = tickets_spec(tmp_path / "tickets.yaml", fake.base_url)
        yield truth, fake, spec_path, data


SPACE = SearchSpace(
    templates={"plain": PLAIN, "shots": TEMPLATE},
    example_template=EXAMPLE,
    k=[1, 3],
    draws=5,
    draw=["random", "stratified"],
)


def _settings(data: Path, **changes: object) -> OptimizeSettings:
    base = {
        "data": data,
        "label_col": "team",
        "test_rows": 300,
        "selection_rows": 300,
        "seed": 1,
        "n_resamples": 300,
    }
    return OptimizeSettings(**{**base, **changes})  # type: ignore[arg-type]


def _examples(result: OptimizeResult) -> list[str]:
    return sorted(e.text for e in getattr(result.winner_spec.technique, "examples", []))


@pytest.mark.slow
def test_halving_finds_the_grid_winner_for_a_third_of_its_calls(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    truth, fake, spec, data = world
    estimate = estimate_optimize(spec, SPACE, _settings(data, search="grid"))
    grid_calls = estimate.grid_calls
    budget = int(0.35 * grid_calls)
    before = fake.requests
    halving = optimize(spec, SPACE, _settings(data, budget_calls=budget), out=tmp_path / "halving")
    halving_calls = fake.requests - before
    assert halving_calls == halving.spend["calls"] <= budget
    before = fake.requests
    grid = optimize(spec, SPACE, _settings(data, search="grid"), out=tmp_path / "grid")
    assert fake.requests - before == grid_calls
    best = grid.winner_card.metrics["weighted_f1"].value
    found = halving.winner_card.metrics["weighted_f1"].value
    assert found >= best - 0.02, (halving.winner, grid.winner)
    # The truth agrees: the winner's examples help.
    assert truth.accuracy(_examples(halving)) >= truth.accuracy(_examples(grid)) - 0.05
    print(f"grid {grid_calls} calls, halving {halving_calls} ({halving_calls / grid_calls:.0%})")


SMALL = SearchSpace(
    templates={"plain": PLAIN, "shots": TEMPLATE}, example_template=EXAMPLE, k=[1, 3], draws=3
)


def _small(data: Path, **changes: object) -> OptimizeSettings:
    return _settings(data, test_rows=200, selection_rows=200, **changes)


def test_the_splits_never_overlap_and_every_prefix_keeps_the_label_shares(world) -> None:  # type: ignore[no-untyped-def]
    _, _, _, data = world
    labelled = load_labelled(data, text_col="text", label_col="team", label_set=TEAMS)
    splits = make_splits(labelled, _small(data), max_k=3)
    pool, selection, test = (set(part.texts) for part in (splits.pool, splits.selection, splits.test))
    assert not pool & selection and not pool & test and not selection & test
    assert (len(selection), len(test), len(pool)) == (200, 200, 800)
    for rows in (12, 30, 200):
        shares = Counter(splits.selection.labels[:rows])
        assert max(shares.values()) - min(shares.values()) <= 1


def test_the_winner_is_measured_honestly_and_the_truth_lies_in_its_interval(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    truth, fake, spec, data = world
    before = fake.requests
    result = optimize(
        spec,
        SMALL,
        _small(data, budget_calls=1100, metric="accuracy"),
        out=tmp_path / "out",
        package_best=True,
    )
    assert fake.requests - before == result.spend["calls"] <= 1100
    assert not result.stopped_by_budget
    rounds = result.rounds
    assert [len(r.scores) for r in rounds] == [13, 7, 4, 2]
    assert all(a.rows < b.rows for a, b in zip(rounds, rounds[1:], strict=False))
    assert set(rounds[-1].kept) == {result.winner}
    o = result.optimism
    assert o.selection == result.candidate(result.winner).score
    assert o.value == pytest.approx(o.selection - o.test.value)
    assert o.low == pytest.approx(o.selection - o.test.high) and o.high == pytest.approx(
        o.selection - o.test.low
    )
    true_accuracy = truth.accuracy(_examples(result))
    assert o.low <= o.selection - true_accuracy <= o.high
    assert {t["metric"] for t in result.comparison} >= {"accuracy", "weighted_f1"}
    # The winner, packaged, carries its card from the test rows and how it was found.
    artifact = load_artifact(str(result.packaged_tag))
    card = EvalCard.attached_to(artifact)
    assert card is not None and card.dataset.evaluated == 200
    assert card.metrics["accuracy"].value == o.test.value
    found = json.loads(artifact.attachments[OPTIMIZATION])
    assert found["candidates_tried"] == 13 and found["spend"]["calls"] == result.spend["calls"]
    assert found["optimism"]["value"] == pytest.approx(o.value)
    assert not set(_examples(result)) & set(card_texts(result, data))
    files = write_optimize_report(result, tmp_path / "report")
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert len(board) == 13 and board.loc[0, "key"] == result.winner and bool(board.loc[0, "winner"])
    assert "data:image/png;base64," in (tmp_path / "report" / "report.html").read_text()
    assert {f.name for f in files} == {"leaderboard.csv", "report.html", "report.json"}
    if importlib.util.find_spec("mlflow") is not None:
        import mlflow

        experiment = log_optimize_to_mlflow(
            result, f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=tmp_path / "ml"
        )
        runs = mlflow.search_runs(experiment_ids=[experiment])
        assert len(runs) == 13 + 1 and runs["metrics.optimism"].dropna().tolist() == [pytest.approx(o.value)]


def card_texts(result: OptimizeResult, data: Path) -> list[str]:
    labelled = load_labelled(data, text_col="text", label_col="team", label_set=TEAMS)
    return make_splits(labelled, _small(data), max_k=3).test.texts


def test_a_dollar_budget_is_never_exceeded_and_the_estimate_is_near_the_spend(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, fake, spec, data = world
    settings = _small(data, budget_usd=0.02)
    estimate = estimate_optimize(spec, SMALL, settings)
    assert estimate.tokens_counted_with == "tiktoken" and estimate.cost_usd <= 0.02
    result = optimize(spec, SMALL, settings, out=tmp_path / "out")
    assert result.spend["cost_usd"] <= 0.02
    assert abs(estimate.cost_usd - result.spend["cost_usd"]) <= 0.1 * result.spend["cost_usd"]
    assert abs(estimate.calls - result.spend["calls"]) <= 0.1 * result.spend["calls"]
    # A budget that cannot give every candidate a fair first round is refused before any call.
    before = fake.requests
    with pytest.raises(LabelwiseError, match=r"Give at least \$"):
        optimize(spec, SMALL, _small(data, budget_usd=0.002), out=tmp_path / "small")
    assert fake.requests == before


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "labelwise.cli", "optimize", *args]


def test_a_killed_run_goes_on_where_it_stopped(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    truth, fake, spec, data = world
    sent: list[str] = []
    fake.answer = lambda prompt: sent.append(prompt) or truth.answer(prompt)
    fake.latency_s = 0.005
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SMALL.model_dump(mode="json", exclude_none=True)))
    args = _cli(str(spec), str(data), "--label-col", "team", "--space", str(space), "--budget-calls", "1100",
                "--test-rows", "200", "--selection-rows", "200", "--seed", "1", "--concurrency", "4",
                "--out", str(tmp_path / "out"), "--json")  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(sent) < 400 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = len(sent)
    assert 400 <= killed_after < 1000
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(rerun.stdout)
    assert result["spend"]["calls"] <= 1100
    repeated = len(sent) - len(set(sent))
    assert repeated <= 4  # at most the calls in flight when it was killed
    assert len(set(sent)) == result["spend"]["calls"]
    assert result["spend"]["calls_this_run"] == len(sent) - killed_after
    assert (tmp_path / "out" / "report.html").is_file()


def test_dry_run_and_what_is_refused(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, fake, spec, data = world
    common = [str(spec), str(data), "--label-col", "team", "--test-rows", "200", "--selection-rows", "200"]
    # Beside the spec, the search space is found without --space.
    space = yaml.safe_dump(SMALL.model_dump(mode="json", exclude_none=True))
    spec.with_name("tickets.space.yaml").write_text(space)
    dry = subprocess.run(
        _cli(*common, "--budget-calls", "1100", "--dry-run", "--json"), capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    estimate = json.loads(dry.stdout)
    assert estimate["calls"] <= 1100 and estimate["test_calls"] == 400 and fake.requests == 0
    assert estimate["candidates"] == 13 and [r["candidates"] for r in estimate["rounds"]] == [13, 7, 4, 2]
    assert estimate["grid_calls"] == 13 * 200 + 400
    text = subprocess.run(
        _cli(*common, "--budget-calls", "1100", "--dry-run"), capture_output=True, text=True
    )
    assert "13 candidates" in text.stdout and "the full grid would make 3000 calls" in " ".join(
        text.stdout.split()
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("k: [1]\n")
    refusals = {
        "nothing to search": ["--budget-calls", "900", "--space", str(empty)],
        "give a budget": [],
        "one budget": ["--budget-calls", "900", "--budget-usd", "1"],
        "Give at least": ["--budget-calls", "500"],
        "--metric must be one of": ["--budget-calls", "900", "--metric", "mae"],
        "search space file": ["--budget-calls", "900", "--space", str(tmp_path / "missing.yaml")],
        "no column 'label'": ["--budget-calls", "900", "--label-col", "label"],
        "cannot hold 1100 test rows": ["--budget-calls", "900", "--test-rows", "1100"],
    }
    for message, extra in refusals.items():
        label = [] if "--label-col" in extra else ["--label-col", "team"]
        result = subprocess.run(
            _cli(*common[:2], *label, *common[4:], *extra), capture_output=True, text=True
        )
        assert result.returncode == 2, (message, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    fine_tuned = subprocess.run(
        _cli(str(EXAMPLES / "yelp-fine-tuned.yaml"), str(YELP_CSV), "--label-col", "stars", "--budget-calls",
             "9"),
        capture_output=True, text=True,
    )  # fmt: skip
    assert fine_tuned.returncode == 2 and "is a fine_tuned classifier" in fine_tuned.stderr
    assert fake.requests == 0
    assert not (tmp_path / "tickets-optimize").exists()


def test_the_candidates_of_a_search_space(world) -> None:  # type: ignore[no-untyped-def]
    _, fake, spec_path, data = world
    base = ClassifierSpec.from_yaml(spec_path)
    labelled = load_labelled(data, text_col="text", label_col="team", label_set=TEAMS)
    pool = make_splits(labelled, _small(data), max_k=3).pool
    embedder = {"provider": "openai", "model": "text-embedding-3-small", "base_url": fake.base_url}
    space = SearchSpace.model_validate(
        {
            "templates": {"plain": PLAIN, "shots": TEMPLATE},
            "example_template": EXAMPLE,
            "k": [2, 3],
            "draws": 2,
            "draw": ["random", "stratified", "nearest"],
            "embedder": embedder,
            "temperatures": [0, 0.7],
            "models": ["gpt-4o-mini", {"model": "gpt-4.1-mini", "usd_per_million_prompt_tokens": 0.4}],
            "max_example_chars": 25,
        }  # fmt: skip
    )
    candidates = make_candidates(base, space, pool, seed=0)
    # plain; shots x k 2, 3 x (2 random + 2 stratified + 1 nearest); each at 2 temperatures and 2 models
    assert len(candidates) == (1 + 2 * 5) * 2 * 2 == len({c.key for c in candidates})
    for c in candidates:
        examples = getattr(c.spec.technique, "examples", [])
        assert all(len(e.text) <= 25 for e in examples)
        if c.draw == "stratified":
            assert len({e.label for e in examples}) == min(c.k, 3)
        if c.draw == "nearest":
            assert c.spec.technique.selection == "nearest" and c.spec.technique.k == c.k  # type: ignore[union-attr]
            assert len(examples) == sum(len(t) <= 25 for t in pool.texts)
        elif c.k:
            assert len(examples) == c.k
    assert {c.spec.backend.usd_per_million_prompt_tokens for c in candidates} == {0.15, 0.4}
    assert {c.temperature for c in candidates} == {0.0, 0.7}
    with pytest.raises(LabelwiseError, match="nearest needs an embedder"):
        make_candidates(base, SearchSpace(templates={"shots": TEMPLATE}, draw=["nearest"]), pool, seed=0)
    with pytest.raises(LabelwiseError, match="k=5000 is more than"):
        make_candidates(base, SearchSpace(templates={"shots": TEMPLATE}, k=[5000]), pool, seed=0)


def test_nearest_examples_compete_with_drawn_ones(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, fake, spec, data = world
    embedder = {"provider": "openai", "model": "text-embedding-3-small", "base_url": fake.base_url}
    space = SearchSpace.model_validate(
        {
            "templates": {"shots": TEMPLATE},
            "example_template": EXAMPLE,
            "k": [3],
            "draws": 2,
            "draw": ["random", "nearest"],
            "embedder": embedder,
        }  # fmt: skip
    )
    result = optimize(spec, space, _small(data, budget_calls=700, pool_rows=100), out=tmp_path / "out")
    assert [c.draw for c in result.candidates if c.rounds == 1].count("nearest") <= 1
    assert "nearest" in {c.draw for c in result.candidates}
    assert result.spend["calls"] <= 700


@pytest.mark.slow
@pytest.mark.local_llm
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the 'local' extra")
def test_yelp_on_the_embedded_model_within_a_call_budget(tmp_path: Path) -> None:
    space = yaml.safe_load((EXAMPLES / "yelp-few-shot.space.yaml").read_text())
    space |= {"k": [1], "draws": 1, "draw": ["stratified"]}  # the spec as written and two draws
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    result = subprocess.run(
        _cli(str(EXAMPLES / "yelp-few-shot.yaml"), str(YELP_CSV), "--label-col", "stars", "--space",
             str(tmp_path / "space.yaml"), "--budget-calls", "80", "--test-rows", "20", "--selection-rows",
             "20", "--out", str(tmp_path / "out")),
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    assert "optimism (selection - test)" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["spend"]["calls"] <= 80 and report["test_rows"] == 20
    assert len(report["candidates"]) == 2 and report["optimism"]["low"] <= report["optimism"]["value"]


def test_a_dollar_budget_holds_where_tokens_are_more_than_characters_suggest(tmp_path: Path) -> None:
    # CJK text: about a token a character, where the estimate without OpenAI's tokenizer says four.
    truth = Truth(
        {f"工单{i:04d}：订单{i * 7919 % 10007}的退款和运费问题请尽快处理": TEAMS[i % 3] for i in range(900)}
    )
    data = truth.write_csv(tmp_path / "tickets.csv")
    with FakeOpenAIServer(answer=truth.answer) as fake:
        prices = {"usd_per_million_prompt_tokens": 1.0, "usd_per_million_completion_tokens": 1.0}
        spec = tickets_spec(
            tmp_path / "spec.yaml", fake.base_url, provider="openai_compatible", model="m", **prices
        )
        settings = _small(data, budget_usd=0.1, concurrency=4)
        estimate = estimate_optimize(spec, SMALL, settings)
        assert estimate.tokens_counted_with == "about 4 characters a token"
        result = optimize(spec, SMALL, settings, out=tmp_path / "out")
    # The estimate was low by half: the run stopped its search early to keep the test rows' share.
    assert estimate.cost_usd <= 0.1 and result.stopped_by_budget
    assert result.spend["cost_usd"] <= 0.1
    assert len(result.rounds) < 4 and result.winner_card.dataset.evaluated == 200
