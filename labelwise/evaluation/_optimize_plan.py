"""The plan of an optimisation: its settings, the three-way split, what a call costs, the rounds.

Everything here is decided before the first call, from the data, the candidates' rendered
prompts and the budget, so ``--dry-run`` prints what the run will do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..core import LabelwiseError
from ..packaging import (
    ClassifierArtifact,
    ClassifierRuntime,
    ClassifierSpec,
    count_prompt_tokens,
    count_tokens,
)
from ._evaluate import LabelledData
from ._search_space import Candidate
from ._split import split_labelled

__all__ = [
    "CallCost",
    "OptimizeEstimate",
    "OptimizeSettings",
    "PlannedRound",
    "Search",
    "Splits",
    "call_cost",
    "make_splits",
    "min_rows",
    "money",
    "next_rows",
    "plan_rounds",
    "rounds_for",
]

Search = Literal["halving", "grid"]


@dataclass(frozen=True)
class OptimizeSettings:
    """How to search: the data, the split, the budget. A budget is in calls or in US dollars."""

    data: Path
    text_col: str = "text"
    label_col: str = "label"
    search: Search = "halving"
    budget_calls: int | None = None
    budget_usd: float | None = None
    metric: str = "weighted_f1"
    test_rows: int | None = None
    selection_rows: int | None = None
    pool_rows: int = 1000
    seed: int = 0
    concurrency: int = 16
    n_resamples: int = 1000

    @property
    def unit(self) -> Literal["calls", "usd"]:
        return "usd" if self.budget_usd is not None else "calls"

    @property
    def limit(self) -> float | None:
        return self.budget_usd if self.budget_usd is not None else self.budget_calls


@dataclass(frozen=True)
class Splits:
    pool: LabelledData
    selection: LabelledData
    """In an order where every prefix keeps each label's share (the rounds score prefixes)."""
    test: LabelledData


def _interleaved(data: LabelledData) -> LabelledData:
    """The rows reordered so that any prefix holds each label in about its share of the whole."""
    seen: Counter[str] = Counter()
    counts = Counter(data.labels)
    keys = []
    for label in data.labels:
        seen[label] += 1
        keys.append((seen[label] - 0.5) / counts[label])
    return data.subset(sorted(range(len(keys)), key=lambda i: (keys[i], i)))


def make_splits(data: LabelledData, settings: OptimizeSettings, *, max_k: int) -> Splits:
    """Test rows held out first, then selection rows, then the pool from the rest (all stratified)."""
    n = len({t.strip() for t in data.texts})
    test_rows = settings.test_rows or min(500, n // 5)
    selection_rows = settings.selection_rows or min(500, n // 5)
    if test_rows < 2 or selection_rows < 2 or n - test_rows - selection_rows < max(max_k, 1):
        raise LabelwiseError(
            f"{n} distinct labelled texts cannot hold {test_rows} test rows, {selection_rows} selection "
            f"rows and a pool of at least {max(max_k, 1)} examples: give more data, or fewer "
            "--test-rows / --selection-rows"
        )
    rest, test = split_labelled(data, test_size=test_rows, seed=settings.seed)
    pool, selection = split_labelled(rest, test_size=selection_rows, seed=settings.seed + 1)
    if len(pool.texts) > settings.pool_rows:
        _, pool = split_labelled(pool, test_size=settings.pool_rows, seed=settings.seed + 2)
    return Splits(pool=pool, selection=_interleaved(selection), test=test)


@dataclass(frozen=True)
class CallCost:
    """What one call of a candidate is expected to cost, from its rendered prompts."""

    prompt_tokens: float
    """Mean over the rows rendered."""
    completion_tokens: int
    """Expected: one label where the model writes its answer, else the most it may write."""
    usd: float
    max_usd: float
    """The longest prompt rendered, and the most the model may write."""

    def units(self, unit: str, *, worst: bool = False) -> float:
        if unit == "calls":
            return 1.0
        return self.max_usd if worst else self.usd


def rounds_for(n_candidates: int, search: Search) -> int:
    return 1 if search == "grid" or n_candidates < 2 else math.ceil(math.log2(n_candidates))


def next_rows(
    rows_done: int, n_rows: int, *, budget_left: float | None, rounds_left: int, round_cost: float
) -> int:
    """Rows each survivor is scored on after this round: an equal share of what is left to spend."""
    if budget_left is None or round_cost <= 0:  # no budget, or calls that cost nothing (a local model)
        return n_rows
    share = budget_left / rounds_left
    return max(rows_done, min(n_rows, rows_done + int(share // round_cost)))


class PlannedRound(BaseModel):
    candidates: int
    rows: int
    calls: int


class OptimizeEstimate(BaseModel):
    """What a search would send, before anything is sent (``--dry-run``)."""

    search: Search
    candidates: int
    pool_rows: int
    selection_rows: int
    test_rows: int
    rounds: list[PlannedRound]
    search_calls: int
    test_calls: int
    calls: int
    grid_calls: int
    """Every candidate on every selection row, and two on the test rows: the fixed grid's cost."""
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cost_usd_high: float
    """If the costliest candidates survived every round and won (a budget in dollars caps it)."""
    tokens_counted_with: str
    budget_unit: Literal["calls", "usd"]
    budget: float | None


def min_rows(labels: Sequence[str]) -> int:
    # A population metric on fewer rows than twice the labels says little about anyone.
    return max(10, 2 * len(labels))


def plan_rounds(
    costs: Sequence[CallCost], n_selection: int, *, unit: str, search_budget: float | None, search: Search
) -> list[PlannedRound]:
    """The rounds the search will make, with the mean call cost standing in for the survivors'."""
    mean = sum(c.units(unit) for c in costs) / len(costs)
    survivors, rows_done, planned, rounds = len(costs), 0, 0.0, []
    total = rounds_for(survivors, search)
    for r in range(total):
        left = None if search_budget is None else search_budget - planned
        rows = next_rows(
            rows_done, n_selection, budget_left=left, rounds_left=total - r, round_cost=mean * survivors
        )
        rounds.append(PlannedRound(candidates=survivors, rows=rows, calls=(rows - rows_done) * survivors))
        planned += (rows - rows_done) * survivors * mean
        rows_done = rows
        survivors = math.ceil(survivors / 2)
    return rounds


def costing_spec(candidate: Candidate) -> ClassifierSpec:
    """A spec whose prompts are as long as the candidate's: nearest selection without embedding."""
    technique = candidate.spec.technique
    if getattr(technique, "selection", "fixed") != "nearest":
        return candidate.spec
    examples = technique.examples[: technique.k]  # type: ignore[union-attr]
    return candidate.spec.model_copy(
        update={"technique": technique.model_copy(update={"selection": "fixed", "examples": examples})}
    )


async def call_cost(candidate: Candidate, texts: Sequence[str]) -> tuple[CallCost, str]:
    """The mean and the worst cost of a call, from the candidate's prompts for ``texts``.

    The mean expects an answer of one label when the model writes its answer (``generate``);
    the worst, the most the request lets it write.
    """
    spec = costing_spec(candidate)
    async with ClassifierRuntime(
        artifact=ClassifierArtifact(spec=spec, label_tokens=candidate.label_tokens)
    ) as rt:
        requests = await rt.technique_.requests(list(texts))
    if not requests:
        return CallCost(0.0, 0, 0.0, 0.0), "no prompt"
    counts, counted_with = count_prompt_tokens(spec, requests)
    most = max(r.max_tokens for r in requests)
    expected = most
    if spec.scoring == "generate":
        expected = min(most, max(count_tokens(spec, spec.task.labels)[0]))
    mean = sum(counts) / len(counts)
    price = spec.backend.cost_usd
    cost = CallCost(mean, expected, price(round(mean), expected), price(max(counts), most))
    return cost, counted_with


def money(value: float, unit: str) -> str:
    return f"{value:.0f} calls" if unit == "calls" else f"${value:.4f}"
