"""Scoring a whole table as one library call (``labelwise batch score``), and its pre-run cost estimate.

The input is read and the output written in parts, so a table larger than memory is scored in
bounded memory. The same call after an interruption resumes: the parts written are kept, finished
texts come from the result cache, and through the Batch API the batches already sent are followed,
not sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends import RateLimiter
from ..core import LabelwiseError, labelwise_home, run_sync, text_key
from ..packaging import ClassifierRuntime, count_prompt_tokens
from ._batch_api import BatchAPIRunner
from ._cache import ResultCache
from ._parts import PartsDir, assemble
from ._score import ScoreSummary, check_output_names, part_texts, score_texts, with_output_columns
from ._sources import TableSource, is_url

__all__ = ["BatchResult", "CostEstimate", "batch_score", "estimate_batch_cost"]


@dataclass(frozen=True)
class BatchResult:
    """What scoring a file did: the summary and where the output went."""

    summary: ScoreSummary
    output: str
    models_loaded: dict[str, int] | None = None
    """On Ray: the embedding models each actor (``host:pid``) loaded."""

    def as_dict(self) -> dict[str, Any]:
        shown = {**asdict(self.summary), "output": str(self.output)}
        if self.models_loaded is not None:
            shown |= {"actors": len(self.models_loaded), "models_loaded": sum(self.models_loaded.values())}
        return shown


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


ROWS_PER_PART = 10_000
"""Rows a part holds by default: a killed job scores at most this many again."""


@dataclass(frozen=True)
class Target:
    """Where a job's output goes: a directory of parts, or one file assembled from them at the end."""

    out: str

    @property
    def is_file(self) -> bool:
        name = self.out.rstrip("/").rsplit("/", 1)[-1].lower()
        return name.endswith((".csv", ".jsonl", ".parquet"))

    @property
    def parts_location(self) -> str:
        if not self.is_file:
            return self.out
        head, _, name = self.out.rpartition("/")
        return f"{head}{'/' if head else ''}.{name}.parts"

    def local_path(self, name: str) -> Path | None:
        """A hidden file of the job's own beside (or inside) a local output, or None for a URL."""
        if is_url(self.out):
            return None
        out = Path(self.out)
        return out.with_name(f".{out.name}.{name}") if self.is_file else out / f".{name}"


def _cache(target: Target, use_cache: bool, *, create: bool = True) -> ResultCache | None:
    """The persistent cache, or without it a job checkpoint beside the output, so that a rerun
    resumes all the same. ``create=False`` (a dry run): only one that is already there."""
    path = labelwise_home() / "batch-cache.sqlite" if use_cache else target.local_path("checkpoint.sqlite")
    if path is None or not (create or path.exists()):
        return None
    return ResultCache(path)


def estimate_batch_cost(
    tag: str, input_path: Path | str, *, out: Path | str, text_col: str = "text", use_cache: bool = True
) -> CostEstimate:
    """Tokens and cost of ``batch_score`` with the same arguments; texts already cached are free."""
    source = TableSource.open(input_path, text_col=text_col)
    cache = _cache(Target(str(out)), use_cache, create=False)
    seen: set[str] = set()
    rows, cached, prompt, completion = 0, 0, 0, 0
    counted = ""
    try:
        with ClassifierRuntime.load(tag) as classifier:
            spec = classifier.artifact_.spec
            for part in source.parts(ROWS_PER_PART):
                texts = part_texts(part, text_col)
                rows += len(texts)
                unique = {k: t for t in texts if t.strip() and (k := text_key(t)) not in seen}
                seen.update(unique)
                found = cache.get_many(str(classifier.tag_), unique) if cache is not None else {}
                cached += len(found)
                todo = [t for k, t in unique.items() if k not in found]
                requests = run_sync(classifier.technique_.requests(todo))
                counts, counted = count_prompt_tokens(spec, requests)
                prompt += sum(counts)
                completion += sum(r.max_tokens for r in requests)
    finally:
        if cache is not None:
            cache.close()
    cost = spec.backend.cost_usd(prompt, completion)
    factor = spec.backend.backend.batch_price_factor
    return CostEstimate(
        rows=rows,
        unique_texts=len(seen),
        cached=cached,
        to_score=len(seen) - cached,
        estimated_prompt_tokens=prompt,
        max_completion_tokens=completion,
        estimated_cost_usd=cost,
        estimated_batch_api_cost_usd=None if factor is None else cost * factor,
        prompt_tokens_counted_with=counted or "no texts to count",
    )


def batch_score(
    tag: str,
    input_path: Path | str,
    out: Path | str,
    *,
    text_col: str = "text",
    concurrency: int = 16,
    rpm: float | None = None,
    tpm: float | None = None,
    use_cache: bool = True,
    engine: str = "local",
    address: str | None = None,
    actors: int | None = None,
    actor_cpus: float = 1.0,
    actor_gpus: float = 0.0,
    rows_per_part: int = ROWS_PER_PART,
    prefix: str = "",
    via: str = "requests",
    poll_s: float = 30.0,
    batch_size: int = 50_000,
    on_start: Callable[[str, int | None], None] | None = None,
    on_progress: Callable[..., None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> BatchResult:
    """Score every row of ``input_path`` into ``out``: its columns, plus label, probabilities, status...

    The input is read and the output written part by part (``rows_per_part`` rows), so memory
    stays bounded whatever the input's size. ``out`` is a directory of Parquet parts, or a file
    (CSV, JSONL or Parquet by suffix) assembled from them at the end. Running the same call
    again resumes: the parts already written are kept, and finished texts come from the cache.
    Rows that failed after retries are in the output with status ``error``; the same call sends
    only those again. ``engine``: local or ray (``address``: a running cluster; ``actors``
    scorers, each with ``actor_cpus``/``actor_gpus``); ``via``: requests or batch-api.
    ``on_start(message, rows or None)`` hears once scoring starts, ``on_progress(rows,
    cached=...)`` as rows finish, ``on_status`` the Batch API's news.
    """
    started = time.perf_counter()
    target = Target(str(out))
    if (
        not is_url(str(input_path))
        and not is_url(target.out)
        and Path(target.out).absolute() == Path(input_path).absolute()
    ):
        raise LabelwiseError("--out must not be the input file")
    if via not in ("requests", "batch-api"):
        raise LabelwiseError(f"--via must be requests or batch-api, not {via!r}")
    if engine not in ("local", "ray"):
        raise LabelwiseError(f"--engine must be local or ray, not {engine!r}")
    if via == "batch-api" and engine != "local":
        raise LabelwiseError("--via batch-api sends batches from here; leave out --engine ray")
    if via == "batch-api" and target.local_path("batches.json") is None:
        raise LabelwiseError("--via batch-api keeps its state beside --out: give a local --out")
    source = TableSource.open(input_path, text_col=text_col)
    check_output_names(source.columns, prefix=prefix)
    if via == "batch-api":
        rows_per_part = 2**62  # one part: the runner splits the texts into the provider's batches
    limiter = RateLimiter(requests_per_minute=rpm, tokens_per_minute=tpm) if rpm or tpm else None
    classifier = ClassifierRuntime.load(tag, max_concurrency=concurrency, rate_limiter=limiter)
    if engine == "ray":
        from ._ray import connect

        connect(address)  # before anything is written
    parts = PartsDir(target.parts_location)
    job = {"input": source.location, "files": source.fingerprint(), "artifact_tag": str(classifier.tag_),
           "text_col": text_col, "prefix": prefix, "rows_per_part": rows_per_part}  # fmt: skip
    parts.start(job)
    done = {i: s for i, s in parts.done().items() if not s.failed_rows}
    if on_start is not None:
        how = " through the Batch API" if via == "batch-api" else " on Ray" if engine == "ray" else ""
        on_start(f"scoring {source.location} with {classifier.tag_}{how}", source.num_rows())
    if on_progress is not None and done:
        on_progress(sum(s.rows for s in done.values()), cached=True)
    try:
        if engine == "ray":
            from ._ray import score_parts_on_ray

            scored, loads = score_parts_on_ray(
                source, parts, classifier.artifact_, skip=set(done), rows_per_part=rows_per_part,
                text_col=text_col, prefix=prefix, address=address, actors=actors, actor_cpus=actor_cpus,
                actor_gpus=actor_gpus, concurrency=concurrency, rpm=rpm, tpm=tpm, use_cache=use_cache,
                on_progress=on_progress,
            )  # fmt: skip
        else:
            loads, runner = None, None
            if via == "batch-api":
                state = target.local_path("batches.json")
                assert state is not None
                runner = BatchAPIRunner(
                    classifier, state, poll_s=poll_s, max_requests=batch_size, on_status=on_status
                )
            cache = _cache(target, use_cache)  # after parts.start: a checkpoint may go inside --out
            try:
                scored = _score_parts_here(
                    source, parts, classifier, skip=set(done), rows_per_part=rows_per_part,
                    text_col=text_col, prefix=prefix, cache=cache, runner=runner, on_progress=on_progress,
                )  # fmt: skip
            finally:
                if cache is not None:
                    cache.close()
    finally:
        classifier.close()
    every = {**done, **scored}  # TableSource.open refused a table without rows: never empty
    summary = ScoreSummary.total(list(every.values()), seconds=time.perf_counter() - started)
    parts.finish(every, summary)
    if target.is_file:
        assemble(parts, sorted(every), target.out)
        parts.remove()
    if not use_cache and not summary.failed_rows:
        # Done and written. With failed rows the checkpoint stays, so the same call retries only those.
        checkpoint = target.local_path("checkpoint.sqlite")
        for leftover in checkpoint.parent.glob(f"{checkpoint.name}*") if checkpoint else ():
            leftover.unlink()
    return BatchResult(summary=summary, output=target.out, models_loaded=loads)


def _score_parts_here(
    source: TableSource,
    parts: PartsDir,
    classifier: ClassifierRuntime,
    *,
    skip: set[int],
    rows_per_part: int,
    text_col: str,
    prefix: str,
    cache: ResultCache | None,
    runner: BatchAPIRunner | None,
    on_progress: Callable[..., None] | None,
) -> dict[int, ScoreSummary]:
    """The local engine: each missing part read, scored and written in turn, in this process."""
    scored: dict[int, ScoreSummary] = {}

    async def run() -> None:
        async with classifier:
            for index, part in enumerate(source.parts(rows_per_part)):
                if index in skip:
                    continue
                outputs, summary = await score_texts(
                    part_texts(part, text_col), classifier, cache=cache, on_progress=on_progress, via=runner
                )
                parts.write(index, with_output_columns(part, outputs, prefix=prefix), summary)
                scored[index] = summary

    asyncio.run(run())
    return scored
