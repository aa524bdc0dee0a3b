"""``labelwise optimize`` against a fake provider whose truth is encoded: the test sets which
examples help and which hurt, so the best candidate, each candidate's true accuracy and the
winner's true optimism are known."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from labelwise.evaluation import OptimizeResult, OptimizeSettings, SearchSpace, estimate_optimize, optimize
from tests.fake_openai import FakeOpenAIServer

TEAMS = ["billing", "shipping", "returns"]
TEMPLATE = "Send the ticket to a team.\n\n{examples}\n\nTicket: {text}\nTeam: "
PLAIN = "Send the ticket to billing, shipping or returns.\n\nTicket: {text}\nTeam: "
EXAMPLE = "Ticket: {text}\nTeam: {label}"
BASE_ACCURACY = 0.5
EFFECT = (
    0.12  # each helpful example adds this to the chance of a right answer, each harmful one takes it away
)


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Truth:
    """Tickets with their teams; a third of the texts help as examples, a third hurt."""

    teams: dict[str, str]

    @classmethod
    def make(cls, rows: int) -> Truth:
        return cls({f"ticket {i:04d}: order {i * 7919 % 10007}": TEAMS[i % 3] for i in range(rows)})

    def effect(self, example: str) -> int:
        return {0: 1, 1: -1, 2: 0}[int(_unit("effect", example) * 3)]

    def accuracy(self, examples: list[str]) -> float:
        chance = BASE_ACCURACY + EFFECT * sum(self.effect(e) for e in examples)
        return min(0.95, max(0.05, chance))

    def answer(self, prompt: str) -> str:
        tickets = re.findall(r"^Ticket: (.*)$", prompt, flags=re.M)
        text, examples = tickets[-1], sorted(tickets[:-1])
        right = self.teams[text]
        if _unit(text, *examples) < self.accuracy(examples):
            return right
        return TEAMS[(TEAMS.index(right) + 1 + int(_unit("wrong", text) * 2)) % 3]


@pytest.fixture()
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Truth, FakeOpenAIServer, Path, Path]]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    truth = Truth.make(1200)
    data = tmp_path / "tickets.csv"
    pd.DataFrame({"text": list(truth.teams), "team": list(truth.teams.values())}).to_csv(data, index=False)
    with FakeOpenAIServer(answer=truth.answer) as fake:
        spec = {
            "name": "tickets",
            "task": {"labels": TEAMS},
            "technique": {"kind": "zero_shot", "template": PLAIN},
            "backend": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": fake.base_url,
                "usd_per_million_prompt_tokens": 0.15,
                "usd_per_million_completion_tokens": 0.6,
            },
            "decoding": {"temperature": 0, "max_tokens": 3},
            "scoring": "generate",
        }
        spec_path = tmp_path / "tickets.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
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
