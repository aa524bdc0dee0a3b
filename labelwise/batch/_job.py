"""Scoring a whole file as one library call (``labelwise batch score``), and its pre-run cost estimate.

The result cache makes the same call after an interruption resume: finished texts are not scored
again, and through the Batch API the batches already sent are followed, not sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends import RateLimiter
from ..core import LabelwiseError, labelwise_home, read_table, run_sync, text_key, write_frame
from ..packaging import ClassifierRuntime, count_prompt_tokens
from ._batch_api import BatchAPIRunner
from ._cache import ResultCache
from ._ray import score_with_ray
from ._score import ScoreSummary, check_output_names, score_frame, with_outputs

__all__ = ["BatchResult", "CostEstimate", "batch_score", "estimate_batch_cost"]


@dataclass(frozen=True)
class BatchResult:
    """What scoring a file did: the summary and where the output went."""

    summary: ScoreSummary
    output: Path

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.summary), "output": str(self.output)}


@dataclass(frozen=True)
class CostEstimate:
    """What scoring a file would send, from the cache and the spec's prices; nothing is called."""

    rows: int
    unique_texts: int
    cached: int
    to_score: int
    estimated_prompt_tokens: int
    max_completion_tokens: int
    estimated_cost_usd: float
    estimated_batch_api_cost_usd: float | None
    """``None``: the provider has no Batch API."""
    prompt_tokens_counted_with: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checkpoint(out: Path) -> Path:
    return out.with_name(f".{out.name}.checkpoint.sqlite")


def _cache(out: Path, use_cache: bool) -> ResultCache:
    # Without the persistent cache a job checkpoint beside the output still makes a rerun resume.
    return ResultCache(labelwise_home() / "batch-cache.sqlite" if use_cache else _checkpoint(out))


def estimate_batch_cost(
    tag: str, input_path: Path, *, out: Path, text_col: str = "text", use_cache: bool = True
) -> CostEstimate:
    """Tokens and cost of ``batch_score`` with the same arguments; texts already cached are free."""
    frame = read_table(input_path, required={text_col: "--text-col"})
    texts = frame[text_col].fillna("").astype(str).tolist()
    unique = {text_key(t): t for t in texts if t.strip()}
    cache = _cache(out, use_cache)
    try:
        with ClassifierRuntime.load(tag) as classifier:
            cached = cache.get_many(str(classifier.tag_), unique)
            todo = [t for k, t in unique.items() if k not in cached]
            requests = run_sync(classifier.technique_.requests(todo))
            spec = classifier.artifact_.spec
    finally:
        cache.close()
    backend = spec.backend.backend
    counts, counted = count_prompt_tokens(spec, requests)
    prompt = sum(counts)
    completion = sum(r.max_tokens for r in requests)
    cost = spec.backend.cost_usd(prompt, completion)
    factor = backend.batch_price_factor
    return CostEstimate(
        rows=len(texts),
        unique_texts=len(unique),
        cached=len(cached),
        to_score=len(todo),
        estimated_prompt_tokens=prompt,
        max_completion_tokens=completion,
        estimated_cost_usd=cost,
        estimated_batch_api_cost_usd=None if factor is None else cost * factor,
        prompt_tokens_counted_with=counted,
    )


def batch_score(
    tag: str,
    input_path: Path,
    out: Path,
    *,
    text_col: str = "text",
    concurrency: int = 16,
    rpm: float | None = None,
    tpm: float | None = None,
    use_cache: bool = True,
    engine: str = "local",
    address: str | None = None,
    prefix: str = "",
    via: str = "requests",
    poll_s: float = 30.0,
    batch_size: int = 50_000,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[..., None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> BatchResult:
    """Score every row of ``input_path`` into ``out``: its columns, plus label, probabilities, status...

    Rows that failed after retries are in the output with status ``error``; the same call sends
    only those again. ``engine``: local or ray; ``via``: requests or batch-api.
    ``on_start(message, rows)`` hears once scoring starts, ``on_progress(rows, cached=...)`` as rows
    finish, ``on_status`` the Batch API's news.
    """
    if out.resolve() == input_path.resolve():
        raise LabelwiseError("--out must not be the input file")
    if via not in ("requests", "batch-api"):
        raise LabelwiseError(f"--via must be requests or batch-api, not {via!r}")
    if engine not in ("local", "ray"):
        raise LabelwiseError(f"--engine must be local or ray, not {engine!r}")
    if via == "batch-api" and engine != "local":
        raise LabelwiseError("--via batch-api sends batches from here; leave out --engine ray")
    frame = read_table(input_path, required={text_col: "--text-col"})
    check_output_names(list(frame.columns), prefix=prefix)
    # Scored under a fixed name, so neither the text column nor any other input column is touched.
    texts = pd.DataFrame({"text": frame[text_col]})
    limiter = RateLimiter(requests_per_minute=rpm, tokens_per_minute=tpm) if rpm or tpm else None
    classifier = ClassifierRuntime.load(tag, max_concurrency=concurrency, rate_limiter=limiter)
    cache = _cache(out, use_cache)
    try:
        if engine == "ray":
            scored, summary = score_with_ray(
                texts, classifier.artifact_, text_col="text", address=address, concurrency=concurrency
            )
        else:
            runner = None
            if via == "batch-api":
                state = out.with_name(f".{out.name}.batches.json")
                runner = BatchAPIRunner(
                    classifier, state, poll_s=poll_s, max_requests=batch_size, on_status=on_status
                )
            if on_start is not None:
                how = " through the Batch API" if runner is not None else ""
                on_start(f"scoring {len(texts)} rows with {classifier.tag_}{how}", len(texts))

            async def run() -> tuple[pd.DataFrame, ScoreSummary]:
                async with classifier:
                    return await score_frame(
                        texts, classifier, text_col="text", cache=cache, on_progress=on_progress, via=runner
                    )

            scored, summary = asyncio.run(run())
        write_frame(with_outputs(frame, scored, prefix=prefix), out)
    finally:
        cache.close()
        classifier.close()
    if not use_cache and not summary.failed_rows:
        # Done and written. With failed rows the checkpoint stays, so the same call retries only those.
        checkpoint = _checkpoint(out)
        for leftover in checkpoint.parent.glob(f"{checkpoint.name}*"):
            leftover.unlink()
    return BatchResult(summary=summary, output=out)
