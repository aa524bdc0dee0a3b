"""Scoring on a Ray cluster: the parts of a job spread over a pool of scoring actors.

Ray Data runs the pipeline: a dataset of part numbers flows through ``map_batches`` with a class,
so each actor loads the classifier once (its model too: an embedding, ONNX or local model) and
then scores part after part: it reads the part's rows itself (Parquet row groups, from any
filesystem every node can reach), scores them with the local engine's ``score_texts`` and writes
the part into the job's directory. Only each part's summary comes back to the driver, so neither
the input nor the output passes through it. Ray Data's own writers name files by run, which could
not resume a killed job part by part; this engine writes the same parts as the local one, so a
job started on one engine can be finished on the other.

The requests and tokens per minute are one budget for the whole cluster: a ``RateSchedule``
held by one actor books every request, and a ``Retry-After`` from the provider holds everyone.
``--concurrency`` is the cluster's requests in flight, shared among the actors.

CSV and JSON Lines inputs cannot be read from a row number without reading all rows before it,
so the driver first copies them, part by part, into hidden Parquet files in the job's directory.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from ..backends import RateSchedule, models_loaded
from ..core import LabelwiseError, labelwise_home
from ..packaging import ClassifierArtifact, ClassifierRuntime
from ._cache import ResultCache
from ._parts import PartsDir, write_whole
from ._score import ScoreSummary, part_texts, score_texts, with_output_columns
from ._sources import TableSource

if TYPE_CHECKING:
    import ray

__all__ = ["PartScorer", "SharedRateLimiter", "connect", "score_parts_on_ray"]

STAGED_PREFIX = ".input-"


class SharedRateLimiter:
    """A ``Limiter`` that asks the cluster's one schedule (a Ray actor) when each request may go."""

    def __init__(self, schedule: ray.actor.ActorHandle[Any]) -> None:
        self.schedule = schedule

    async def acquire(self, tokens: int) -> None:
        # A time, not a delay: a reply that comes late must not push the request later still.
        # (Nodes' clocks are assumed in step, as NTP keeps them, to well within a request.)
        wait = await self.schedule.send_at.remote(tokens) - time.time()
        if wait > 0:
            await asyncio.sleep(wait)

    def hold(self, seconds: float) -> None:
        self.schedule.hold.remote(seconds)


class PartScorer:
    """One scoring actor: the classifier loaded once, then part after part scored and written."""

    def __init__(
        self,
        *,
        source: TableSource,
        parts_location: str,
        artifact: ClassifierArtifact,
        text_col: str,
        prefix: str,
        rows_per_part: int,
        concurrency: int,
        schedule: ray.actor.ActorHandle[Any] | None,
        use_cache: bool,
    ) -> None:
        self.source, self.text_col, self.prefix, self.rows_per_part = source, text_col, prefix, rows_per_part
        self.parts = PartsDir(parts_location)
        self.loop = asyncio.new_event_loop()
        limiter = SharedRateLimiter(schedule) if schedule is not None else None
        self.classifier = ClassifierRuntime(
            artifact=artifact, max_concurrency=concurrency, rate_limiter=limiter
        )
        self.loop.run_until_complete(self.classifier.prepare())  # the model, once per actor
        # Each node's own persistent cache, shared by the actors on it.
        self.cache = (
            ResultCache(labelwise_home() / "batch-cache.sqlite", any_thread=True) if use_cache else None
        )
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        summaries: dict[str, list[Any]] = {"index": [], "worker": [], "models_loaded": []}
        for index in batch["index"]:
            summary = self.loop.run_until_complete(self._score(int(index)))
            summaries["index"].append(int(index))
            summaries["worker"].append(self.worker)
            summaries["models_loaded"].append(models_loaded())
            for name, value in asdict(summary).items():
                summaries.setdefault(name, []).append(value)
        return summaries

    async def _score(self, index: int) -> ScoreSummary:
        import pyarrow.parquet as pq

        start = index * self.rows_per_part
        if self.source.suffix == ".parquet":
            part = self.source.read_rows(start, start + self.rows_per_part)
        else:
            part = pq.read_table(self.parts.filesystem.open_input_file(self.parts.join(_staged(index))))
        outputs, summary = await score_texts(
            part_texts(part, self.text_col), self.classifier, cache=self.cache
        )
        self.parts.write(index, with_output_columns(part, outputs, prefix=self.prefix), summary)
        return summary


def _staged(index: int) -> str:
    return f"{STAGED_PREFIX}{index:05d}.parquet"


def _plain(value: Any) -> Any:
    """A Python number for a NumPy one (Ray hands rows back as NumPy scalars)."""
    return value.item() if hasattr(value, "item") else value


def _stage(source: TableSource, parts: PartsDir, rows_per_part: int, skip: set[int]) -> int:
    """Copy a CSV or JSONL input into hidden Parquet parts every actor can read; returns the parts."""
    import pyarrow.parquet as pq

    count = 0
    for index, part in enumerate(source.parts(rows_per_part)):
        count = index + 1
        if index in skip:
            continue
        with write_whole(parts.filesystem, parts.join(_staged(index))) as stream:
            pq.write_table(part, stream)
    return count


def _clear_staged(parts: PartsDir) -> None:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(parts.path, allow_not_found=True)
    for info in parts.filesystem.get_file_info(selector):
        if info.base_name.startswith(STAGED_PREFIX):
            parts.filesystem.delete_file(info.path)


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a Ray on this machine.

    An address where nothing listens is refused at once: Ray itself retries for minutes.
    """
    try:
        import ray
    except ImportError:
        raise LabelwiseError("--engine ray needs the 'ray' extra: pip install 'labelwise[ray]'") from None
    if ray.is_initialized():
        return
    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as exc:
            raise LabelwiseError(
                f"no Ray cluster at --address {address} ({exc.strerror or exc}): start one with "
                "`ray start --head`, or give the address it printed"
            ) from None
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)


def score_parts_on_ray(
    source: TableSource,
    parts: PartsDir,
    artifact: ClassifierArtifact,
    *,
    skip: set[int],
    rows_per_part: int,
    text_col: str,
    prefix: str,
    address: str | None,
    actors: int | None,
    actor_cpus: float,
    actor_gpus: float,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    use_cache: bool,
    on_progress: Callable[..., None] | None = None,
) -> tuple[dict[int, ScoreSummary], dict[str, int]]:
    """Score the parts of ``source`` not in ``skip`` on Ray.

    Returns each scored part's summary, and the models each actor (``host:pid``) loaded.
    """
    import ray

    connect(address)
    rows = source.num_rows()
    count = (
        math.ceil(rows / rows_per_part) if rows is not None else _stage(source, parts, rows_per_part, skip)
    )
    todo = [i for i in range(count) if i not in skip]
    if not todo:
        return {}, {}
    if actors is None:  # one per CPU (or GPU) the cluster has, for a model on each
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        per_actor = [(resources.get("CPU", 1.0), actor_cpus), (resources.get("GPU", 0.0), actor_gpus)]
        actors = max(1, int(min(have / need for have, need in per_actor if need > 0)))
    actors = min(actors, len(todo))
    schedule = None
    if rpm or tpm:
        schedule = ray.remote(num_cpus=0)(RateSchedule).remote(requests_per_minute=rpm, tokens_per_minute=tpm)
    # One block per part, so that the pool hands out parts one at a time as actors free up.
    dataset = ray.data.from_items([{"index": i} for i in todo], override_num_blocks=len(todo))
    scored = dataset.map_batches(
        PartScorer,
        batch_size=1,
        concurrency=actors,
        num_cpus=actor_cpus,
        num_gpus=actor_gpus or None,
        fn_constructor_kwargs={
            "source": source,
            "parts_location": parts.location,
            "artifact": artifact,
            "text_col": text_col,
            "prefix": prefix,
            "rows_per_part": rows_per_part,
            "concurrency": math.ceil(concurrency / actors),
            "schedule": schedule,
            "use_cache": use_cache,
        },
    )
    names = [f.name for f in fields(ScoreSummary)]
    summaries: dict[int, ScoreSummary] = {}
    loads: dict[str, int] = {}
    for row in scored.iter_rows():
        loads[str(row["worker"])] = max(loads.get(str(row["worker"]), 0), int(row["models_loaded"]))
        summary = ScoreSummary(**{name: _plain(row[name]) for name in names})
        summaries[int(row["index"])] = summary
        if on_progress is not None:
            on_progress(summary.rows)
    if rows is None and len(summaries) == len(todo):
        _clear_staged(parts)
    return summaries, loads
