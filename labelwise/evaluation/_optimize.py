"""``labelwise optimize``: the best candidate prompt within a budget, and how good it really is.

The labelled rows are split three ways, one row per text, never overlapping: a pool the
examples are drawn from, selection rows the search scores candidates on, and test rows that are
locked away until the search is over. The search is successive halving: every candidate is
scored on a few selection rows, the better half on more, and so on, each round spending an
equal share of the budget. Then the winner and the base spec are scored once on the test rows:
the winner's test metric with its interval, a paired comparison with the base, and the
*optimism*, how much the selection score flattered the winner (the winner's curse).

Every (candidate, text) scored is kept in ``OUT/scores.sqlite`` as it arrives, so a killed run
started again sends none of them twice; the budget counts them all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..core import LabelwiseError, run_sync, text_key
from ..packaging import (
    Classifier,
    ClassifierSpec,
    Prediction,
    measure_label_tokens,
    package,
    technique_for,
)
from ._compare import compare_predictions, comparison_records
from ._evaluate import (
    METRICS,
    ORDINAL_METRICS,
    EvalCard,
    MetricEstimate,
    attach_evaluation,
    evaluate,
    higher_is_better,
    load_labelled,
)
from ._optimize_ledger import ScoreLedger, Scorer, Spend
from ._optimize_plan import (
    CallCost,
    OptimizeEstimate,
    OptimizeSettings,
    PlannedRound,
    Search,
    Splits,
    call_cost,
    make_splits,
    min_rows,
    money,
    next_rows,
    plan_rounds,
    rounds_for,
)
from ._search_space import Candidate, SearchSpace, make_candidates

__all__ = [
    "OPTIMIZATION",
    "OptimizeEstimate",
    "OptimizeResult",
    "OptimizeSettings",
    "RoundResult",
    "estimate_optimize",
    "optimize",
]

OPTIMIZATION = "optimization.json"  # attached to a packaged winner: how it was found
_LEDGER = "scores.sqlite"
_COSTING_ROWS = 20  # selection rows rendered per candidate to estimate what a call costs
_BLOCKS = 4  # a round's rows go out in this many blocks, each to every survivor


@dataclass
class _Setup:
    base: Candidate
    candidates: list[Candidate]
    splits: Splits
    costs: dict[str, CallCost]
    counted_with: str
    test_reserve: float
    search_budget: float | None
    plan: list[PlannedRound]

    @property
    def labels(self) -> list[str]:
        return self.base.spec.task.labels


def _base_candidate(base: ClassifierSpec) -> Candidate:
    return Candidate.of(
        base, measure_label_tokens(base), name="base (the spec as written)", template="base",
        k=len(getattr(base.technique, "examples", [])), draw=None, draw_seed=None,
        temperature=base.decoding.temperature, model=base.model_name,
    )  # fmt: skip


def _setup(spec_path: Path, space: SearchSpace, settings: OptimizeSettings) -> _Setup:
    if settings.search == "halving" and settings.limit is None:
        raise LabelwiseError("give a budget: --budget-calls N or --budget-usd X (--search grid needs none)")
    if settings.budget_calls is not None and settings.budget_usd is not None:
        raise LabelwiseError("give one budget: --budget-calls or --budget-usd, not both")
    base_spec = ClassifierSpec.from_yaml(spec_path)
    technique = base_spec.technique
    if technique.prompt_template is None or technique.served_model is not None:
        raise LabelwiseError(
            f"{spec_path.name} is a {technique.kind} classifier: optimize varies the prompt and its "
            "examples around a zero-shot or few-shot spec (a fine-tuned model answers the prompt it was "
            "trained on; an embedding classifier has none)"
        )
    labels = base_spec.task.labels
    metrics = {**METRICS, **(ORDINAL_METRICS if base_spec.task.ordinal else {})}
    if settings.metric not in metrics:
        raise LabelwiseError(f"--metric must be one of {', '.join(metrics)}, not {settings.metric!r}")
    data = load_labelled(
        settings.data, text_col=settings.text_col, label_col=settings.label_col, label_set=labels
    )
    # The base spec's own examples are neither selection nor test rows: it would be measured on
    # what it has seen.
    seen = technique_for(base_spec).seen_text_keys(base_spec, {})
    if seen:
        data = data.subset([i for i, t in enumerate(data.texts) if text_key(t) not in seen])
    splits = make_splits(data, settings, max_k=max(space.k))
    base = _base_candidate(base_spec)
    drawn = make_candidates(
        base_spec, space, splits.pool, seed=settings.seed, label_tokens={base.model: base.label_tokens}
    )
    candidates = [base, *(c for c in drawn if c.key != base.key)]
    if len(candidates) < 2:
        raise LabelwiseError(
            f"nothing to search: {spec_path.name} is zero-shot and the search space gives no other "
            "template; name templates (with {examples} for few-shot ones) in the search space file "
            f"({SearchSpace.beside(spec_path).name} beside the spec, or --space)"
        )
    sample = splits.selection.texts[:_COSTING_ROWS]

    async def costs() -> list[tuple[CallCost, str]]:
        return [await call_cost(c, sample) for c in candidates]

    measured = run_sync(costs())
    cost_of = {c.key: m[0] for c, m in zip(candidates, measured, strict=True)}
    counted_with = measured[0][1]
    unit = settings.unit
    worst = max(cost.units(unit, worst=True) for cost in cost_of.values())
    test_reserve = len(splits.test.texts) * (cost_of[base.key].units(unit, worst=True) + worst)
    limit = settings.limit
    search_budget = None if limit is None else limit - test_reserve
    plan = plan_rounds(
        [cost_of[c.key] for c in candidates],
        len(splits.selection.texts),
        unit=unit,
        search_budget=search_budget,
        search=settings.search,
    )
    minimum = min(min_rows(labels), len(splits.selection.texts))
    if limit is not None and plan[0].rows < minimum:
        mean = sum(c.units(unit) for c in cost_of.values()) / len(cost_of)
        needed = test_reserve + minimum * mean * len(candidates) * len(plan)
        what = f"{needed:.0f} calls (--budget-calls)" if unit == "calls" else f"${needed:.4f} (--budget-usd)"
        raise LabelwiseError(
            f"a budget of {money(limit, unit)} leaves {money(max(search_budget or 0, 0), unit)} for the "
            f"search after scoring the winner and the base on {len(splits.test.texts)} test rows, which "
            f"gives each of the {len(candidates)} candidates {plan[0].rows} selection rows in the first "
            f"round; it needs {minimum}. Give at least {what}, fewer candidates (fewer templates, k "
            "values, draws in the search space) or fewer --test-rows"
        )
    return _Setup(base, candidates, splits, cost_of, counted_with, test_reserve, search_budget, plan)


def estimate_optimize(spec_path: Path, space: SearchSpace, settings: OptimizeSettings) -> OptimizeEstimate:
    """Calls, tokens and cost the search would spend; nothing is sent to a model."""
    setup = _setup(spec_path, space, settings)
    return _estimate(setup, settings)


def _estimate(setup: _Setup, settings: OptimizeSettings) -> OptimizeEstimate:
    n_test = len(setup.splits.test.texts)
    search_calls = sum(r.calls for r in setup.plan)
    base = setup.costs[setup.base.key]
    costliest = sorted(setup.costs.values(), key=lambda c: (c.usd, c.prompt_tokens), reverse=True)

    def total(field: str, *, high: bool = False) -> float:
        """Each round's calls at a cost between the mean candidate's and its costliest survivors'.

        Which candidates survive is not known before they are scored, and the better prompts
        are often the longer ones (more examples): the point estimate is halfway to the worst.
        """
        values = [float(getattr(c, field)) for c in costliest]
        mean = sum(values) / len(values)

        def per_call(survivors: int) -> float:
            top = sum(values[:survivors]) / survivors
            return top if high else (mean + top) / 2

        rounds = sum(r.calls * per_call(r.candidates) for r in setup.plan)
        return rounds + n_test * (float(getattr(base, field)) + per_call(1))

    test_calls = 2 * n_test
    return OptimizeEstimate(
        search=settings.search,
        candidates=len(setup.candidates),
        pool_rows=len(setup.splits.pool.texts),
        selection_rows=len(setup.splits.selection.texts),
        test_rows=n_test,
        rounds=setup.plan,
        search_calls=search_calls,
        test_calls=test_calls,
        calls=search_calls + test_calls,
        grid_calls=len(setup.candidates) * len(setup.splits.selection.texts) + test_calls,
        prompt_tokens=round(total("prompt_tokens")),
        completion_tokens=round(total("completion_tokens")),
        cost_usd=total("usd"),
        cost_usd_high=total("usd", high=True),
        tokens_counted_with=setup.counted_with,
        budget_unit=settings.unit,
        budget=settings.limit,
    )


class CandidateScore(BaseModel):
    key: str
    name: str
    template: str
    k: int
    draw: str | None
    draw_seed: int | None
    temperature: float
    model: str
    rows: int
    """Selection rows it was scored on."""
    score: float
    """On those rows."""
    rounds: int
    """Rounds it took part in."""
    dropped_in_round: int | None
    """``None``: it won (or the budget ran out with it still in)."""


class RoundResult(BaseModel):
    index: int
    rows: int
    scores: dict[str, float]
    kept: list[str]
    dropped: list[str]


class Optimism(BaseModel):
    """How much the selection score flattered the winner: selection minus test (for an error
    metric, test minus selection), with the interval of the test score carried over."""

    metric: str
    selection: float
    selection_rows: int
    test: MetricEstimate
    value: float
    low: float
    high: float


class OptimizeResult(BaseModel):
    search: Search
    metric: str
    data: str
    data_sha256: str
    pool_rows: int
    selection_rows: int
    test_rows: int
    candidates: list[CandidateScore]
    rounds: list[RoundResult]
    stopped_by_budget: bool
    winner: str
    winner_spec: ClassifierSpec
    winner_card: EvalCard
    base: str
    base_card: EvalCard
    comparison: list[dict[str, Any]]
    """The winner (B) against the base spec (A) on the test rows, a paired test per metric."""
    optimism: Optimism
    spend: dict[str, Any]
    estimate: OptimizeEstimate
    packaged_tag: str | None = None
    labelwise_version: str = __version__

    def candidate(self, key: str) -> CandidateScore:
        return next(c for c in self.candidates if c.key == key)

    def provenance(self) -> dict[str, Any]:
        """What an artifact records of how it was found."""
        return {
            "found_by": "labelwise optimize",
            "search": self.search,
            "metric": self.metric,
            "data": self.data,
            "data_sha256": self.data_sha256,
            "rows": {"pool": self.pool_rows, "selection": self.selection_rows, "test": self.test_rows},
            "candidates_tried": len(self.candidates),
            "rounds": len(self.rounds),
            "spend": self.spend,
            "selection_score": self.optimism.selection,
            "test_score": self.optimism.test.model_dump(),
            "optimism": {k: getattr(self.optimism, k) for k in ("value", "low", "high")},
            "labelwise_version": self.labelwise_version,
        }


def _metric(name: str) -> Callable[..., float]:
    return {**METRICS, **ORDINAL_METRICS}[name][0]


@dataclass
class _Searched:
    rounds: list[RoundResult]
    scores: dict[str, CandidateScore]
    winner: Candidate
    stopped_by_budget: bool


async def _search(
    setup: _Setup,
    settings: OptimizeSettings,
    scorer: Scorer,
    on_round: Callable[[RoundResult], None] | None,
) -> _Searched:
    selection = setup.splits.selection
    keys = [text_key(t) for t in selection.texts]
    metric, better = _metric(settings.metric), higher_is_better(settings.metric)
    order = {c.key: i for i, c in enumerate(setup.candidates)}  # ties go to the earlier (the base first)
    survivors = list(setup.candidates)
    total = rounds_for(len(survivors), settings.search)
    rows_done, planned, stopped = 0, 0.0, False
    sign = -1 if better else 1
    rounds: list[RoundResult] = []
    history: dict[str, CandidateScore] = {}
    for r in range(total):
        round_cost = sum(setup.costs[c.key].units(settings.unit) for c in survivors)
        left = None if setup.search_budget is None else setup.search_budget - planned
        rows = next_rows(rows_done, len(keys), budget_left=left, rounds_left=total - r, round_cost=round_cost)
        # A block of rows for one candidate after another: its prompts share their start (template
        # and examples), which a server's prompt cache reuses from one call to the next; and a
        # budget that runs out mid-round leaves every survivor at most a block apart.
        block = max(1, math.ceil((rows - rows_done) / _BLOCKS))
        pairs = [
            (c, keys[i], selection.texts[i])
            for start in range(rows_done, rows, block)
            for c in survivors
            for i in range(start, min(start + block, rows))
        ]
        stopped = not await scorer.score(pairs, keep=setup.test_reserve)
        planned += (rows - rows_done) * round_cost
        if stopped:  # the rows every survivor has
            rows = min(scorer.scored_prefix(c, keys[:rows]) for c in survivors)
            if rows == 0:
                raise LabelwiseError("the budget ran out before every candidate had one selection row")

        def score(candidate: Candidate, rows: int = rows) -> float:
            predicted = [
                p.label if p is not None else None for p in scorer.predictions(candidate, keys[:rows])
            ]
            return float(metric(selection.labels[:rows], predicted, labels=setup.labels))

        scores = {c.key: score(c) for c in survivors}
        ranked = sorted(survivors, key=lambda c: (sign * scores[c.key], order[c.key]))
        last = r == total - 1 or stopped
        kept = ranked[:1] if last else ranked[: math.ceil(len(ranked) / 2)]
        dropped = [c for c in ranked if c not in kept]
        for c in survivors:
            history[c.key] = CandidateScore(
                key=c.key, name=c.name, template=c.template, k=c.k, draw=c.draw, draw_seed=c.draw_seed,
                temperature=c.temperature, model=c.model, rows=rows, score=scores[c.key],
                rounds=r + 1, dropped_in_round=r + 1 if c in dropped and not (last and stopped) else None,
            )  # fmt: skip
        result = RoundResult(
            index=r + 1,
            rows=rows,
            scores=scores,
            kept=[c.key for c in kept],
            dropped=[c.key for c in dropped],
        )
        rounds.append(result)
        if on_round is not None:
            on_round(result)
        survivors, rows_done = kept, rows
        if stopped:
            break
    winner = survivors[0]
    ranked_all = sorted(
        history.values(), key=lambda s: (-s.rounds, s.key != winner.key, sign * s.score, order[s.key])
    )
    return _Searched(
        rounds=rounds,
        scores={s.key: s for s in ranked_all},
        winner=winner,
        stopped_by_budget=stopped,
    )


def _optimism(metric: str, selection: float, selection_rows: int, test: MetricEstimate) -> Optimism:
    if higher_is_better(metric):
        value, low, high = selection - test.value, selection - test.high, selection - test.low
    else:
        value, low, high = test.value - selection, test.low - selection, test.high - selection
    return Optimism(
        metric=metric,
        selection=selection,
        selection_rows=selection_rows,
        test=test,
        value=value,
        low=low,
        high=high,
    )


def optimize(
    spec_path: Path,
    space: SearchSpace,
    settings: OptimizeSettings,
    *,
    out: Path,
    package_best: bool = False,
    on_start: Callable[[OptimizeEstimate], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> OptimizeResult:
    """Search ``space`` around the spec at ``spec_path`` within the budget; measure the winner honestly.

    ``out`` keeps what was scored (a rerun goes on from there). ``on_start`` hears the estimate
    before the first call, ``on_progress(1)`` each new call, ``on_round`` each round's outcome.
    """
    setup = _setup(spec_path, space, settings)
    estimate = _estimate(setup, settings)
    if on_start is not None:
        on_start(estimate)
    out.mkdir(parents=True, exist_ok=True)
    ledger = ScoreLedger(out / _LEDGER)
    spend = Spend(unit=settings.unit, limit=settings.limit)
    limit = technique_for(setup.base.spec).max_in_flight(setup.base.spec) or settings.concurrency
    scorer = Scorer(ledger, spend, setup.costs, min(limit, settings.concurrency), on_progress)
    test = setup.splits.test
    test_keys = [text_key(t) for t in test.texts]

    async def run() -> _Searched:
        try:
            searched = await _search(setup, settings, scorer, on_round)
            contenders = [searched.winner] + ([setup.base] if setup.base.key != searched.winner.key else [])
            pairs = [(c, test_keys[i], test.texts[i]) for c in contenders for i in range(len(test_keys))]
            if not await scorer.score(pairs):
                raise LabelwiseError(
                    "the budget ran out while scoring the test rows (spent "
                    f"{money(spend.spent, spend.unit)}); run again with a larger budget: nothing "
                    "scored is sent twice"
                )
            return searched
        finally:
            await scorer.aclose()

    try:
        searched = run_sync(run())
    finally:
        ledger.close()
    winner = searched.winner

    def card(candidate: Candidate) -> tuple[EvalCard, list[Prediction]]:
        predictions = [p for p in scorer.predictions(candidate, test_keys) if p is not None]
        return evaluate(
            Classifier(artifact=candidate.artifact()), test, predictions=predictions,
            n_resamples=settings.n_resamples, random_state=settings.seed,
        )  # fmt: skip

    winner_card, winner_predictions = card(winner)
    base_card, base_predictions = card(setup.base)
    tests = compare_predictions(
        test.labels,
        [p.label for p in base_predictions],
        [p.label for p in winner_predictions],
        labels=setup.labels,
        ordinal=setup.base.spec.task.ordinal,
        n_resamples=settings.n_resamples,
        random_state=settings.seed,
    )
    winner_score = searched.scores[winner.key]
    result = OptimizeResult(
        search=settings.search,
        metric=settings.metric,
        data=settings.data.name,
        data_sha256=test.dataset.sha256,
        pool_rows=len(setup.splits.pool.texts),
        selection_rows=len(setup.splits.selection.texts),
        test_rows=len(test.texts),
        candidates=list(searched.scores.values()),
        rounds=searched.rounds,
        stopped_by_budget=searched.stopped_by_budget,
        winner=winner.key,
        winner_spec=winner.spec,
        winner_card=winner_card,
        base=setup.base.key,
        base_card=base_card,
        comparison=comparison_records(tests, a="base", b="winner"),
        optimism=_optimism(
            settings.metric, winner_score.score, winner_score.rows, winner_card.metrics[settings.metric]
        ),
        spend=spend.as_dict(),
        estimate=estimate,
    )
    if package_best:
        artifact, _ = package(winner.spec)
        attach_evaluation(
            str(artifact.tag), winner_card, test, winner_predictions, source=settings.data.name,
            seed=settings.seed, also={OPTIMIZATION: json.dumps(result.provenance(), indent=2).encode()},
        )  # fmt: skip
        result.packaged_tag = str(artifact.tag)
    return result
