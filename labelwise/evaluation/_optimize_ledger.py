"""What an optimisation has scored and spent: kept as it arrives, so a killed run loses nothing.

Every (candidate, text) scored is a row of ``scores.sqlite`` in the run's folder; a rerun reads
them back and sends none of them again, and the budget counts them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..backends import BackendError
from ..core import LabelwiseError, open_keyed_db, rows_for_keys
from ..packaging import Classifier, ClassifierRuntime, ClassifierSpec, Prediction
from ._optimize_plan import CallCost
from ._search_space import Candidate

__all__ = ["ScoreLedger", "Scorer", "Spend"]


class ScoreLedger:
    """Every (candidate, text) scored so far, with its prediction: a rerun sends none again."""

    def __init__(self, path: Path) -> None:
        self.db = open_keyed_db(
            path,
            "CREATE TABLE IF NOT EXISTS scored (candidate TEXT NOT NULL, key TEXT NOT NULL, "
            "prediction TEXT NOT NULL, PRIMARY KEY (candidate, key))",
        )

    def get(self, candidate: str, keys: Sequence[str]) -> dict[str, Prediction]:
        rows = rows_for_keys(
            self.db, "SELECT key, prediction FROM scored WHERE candidate = ? AND key IN", [candidate], keys
        )
        return {key: Prediction.model_validate_json(value) for key, value in rows}

    def put(self, candidate: str, key: str, prediction: Prediction) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO scored VALUES (?, ?, ?)", (candidate, key, prediction.model_dump_json())
        )

    def close(self) -> None:
        self.db.close()


@dataclass
class Spend:
    """Calls, tokens and dollars of every (candidate, text) this run's plan scored, kept or new."""

    unit: Literal["calls", "usd"]
    limit: float | None
    calls: int = 0
    new_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    reserved: float = 0.0
    correction: float = 1.0
    """The most a call has cost over its estimate (a token count estimated from characters can be
    low, e.g. where a character is a token): every later reservation grows by it."""

    @property
    def spent(self) -> float:
        return float(self.calls) if self.unit == "calls" else self.cost_usd

    def affords(self, units: float, *, keep: float = 0.0) -> bool:
        """Whether ``units`` more (already ``reserve``d) leave ``keep`` (estimated, corrected) unspent."""
        held = keep * self.correction
        return self.limit is None or self.spent + self.reserved + units <= self.limit - held + 1e-9

    def reserve(self, units: float) -> float:
        """What to hold back for a call estimated at ``units`` at worst (see ``correction``)."""
        return units * self.correction

    def add(self, prediction: Prediction, spec: ClassifierSpec, *, new: bool, expected: float = 0.0) -> None:
        """Count a scored call; ``expected``: its estimated mean cost, to correct later reservations."""
        cost = spec.backend.cost_usd(prediction.prompt_tokens, prediction.completion_tokens)
        self.calls += 1
        self.new_calls += new
        self.prompt_tokens += prediction.prompt_tokens
        self.completion_tokens += prediction.completion_tokens
        self.cost_usd += cost
        if self.unit == "usd" and expected > 0:
            self.correction = max(self.correction, cost / expected)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "limit": self.limit,
            "spent": self.spent,
            "calls": self.calls,
            "calls_this_run": self.new_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
        }


class Scorer:
    """Sends (candidate, row) calls at most ``limit`` at once, in order, until the budget says stop."""

    def __init__(self, ledger: ScoreLedger, spend: Spend, costs: dict[str, CallCost], limit: int,
                 on_progress: Callable[[int], None] | None) -> None:  # fmt: skip
        self.ledger = ledger
        self.spend = spend
        self.costs = costs
        self.limit = limit
        self.on_progress = on_progress
        self.runtimes: dict[str, ClassifierRuntime] = {}
        self.found: dict[str, dict[str, Prediction]] = {}

    def runtime(self, candidate: Candidate) -> ClassifierRuntime:
        if candidate.key not in self.runtimes:
            self.runtimes[candidate.key] = Classifier(
                artifact=candidate.artifact(), max_concurrency=self.limit
            )
        return self.runtimes[candidate.key]

    async def aclose(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.aclose()

    def scored_prefix(self, candidate: Candidate, keys: Sequence[str]) -> int:
        """How many of ``keys``, from the first, the candidate has been scored on."""
        known = self.found.get(candidate.key, {})
        return next((i for i, key in enumerate(keys) if key not in known), len(keys))

    def predictions(self, candidate: Candidate, keys: Sequence[str]) -> list[Prediction | None]:
        known = self.found.get(candidate.key, {})
        return [known.get(k) for k in keys]

    async def score(self, pairs: Sequence[tuple[Candidate, str, str]], *, keep: float = 0.0) -> bool:
        """Score each (candidate, text key, text) not scored yet; ``False`` when the budget ran out.

        ``keep`` is budget that must stay unspent (for the test rows). Calls go out in the order
        given, so what a stop leaves unscored is the end of the list.
        """
        by_candidate: dict[str, tuple[Candidate, list[str]]] = {}
        for candidate, key, _ in pairs:
            by_candidate.setdefault(candidate.key, (candidate, []))[1].append(key)
        for candidate, keys in by_candidate.values():  # scored by an earlier run: paid for, not sent
            have = self.found.setdefault(candidate.key, {})
            for key, prediction in self.ledger.get(candidate.key, [k for k in keys if k not in have]).items():
                have[key] = prediction
                self.spend.add(prediction, candidate.spec, new=False)
        semaphore = asyncio.Semaphore(self.limit)
        tasks: list[asyncio.Task[None]] = []
        failures: list[BackendError] = []

        async def one(candidate: Candidate, key: str, text: str, reserved: float) -> None:
            try:
                [prediction] = await self.runtime(candidate).aclassify([text])
            except BackendError as exc:
                failures.append(exc)
                return
            finally:
                self.spend.reserved -= reserved
                semaphore.release()
            self.ledger.put(candidate.key, key, prediction)
            self.found[candidate.key][key] = prediction
            expected = self.costs[candidate.key].units(self.spend.unit)
            self.spend.add(prediction, candidate.spec, new=True, expected=expected)
            if self.on_progress is not None:
                self.on_progress(1)

        affordable = True
        for candidate, key, text in pairs:
            if key in self.found[candidate.key]:
                continue
            await semaphore.acquire()
            if failures:  # the backend keeps failing: stop sending, keep what came back
                semaphore.release()
                break
            worst = self.spend.reserve(self.costs[candidate.key].units(self.spend.unit, worst=True))
            if not self.spend.affords(worst, keep=keep):
                semaphore.release()
                affordable = False
                break
            self.spend.reserved += worst
            tasks.append(asyncio.create_task(one(candidate, key, text, worst)))
        await asyncio.gather(*tasks)
        if failures:
            raise LabelwiseError(
                f"{len(failures)} calls failed after retries (first: {failures[0]}); everything scored "
                "so far is kept: run the same command again to go on from there"
            )
        return affordable
