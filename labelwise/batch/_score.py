"""Scoring a table of texts: concurrent, rate-limited, deduplicated, cached and resumable."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from ..backends import BackendError
from ..core import LabelwiseError, Reason, read_table, text_key
from ..packaging import ClassifierRuntime, Prediction
from ._cache import ResultCache

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "OUTPUT_COLUMNS",
    "Runner",
    "ScoreSummary",
    "ScoredTable",
    "check_output_names",
    "read_probabilities",
    "read_scored",
    "score_dataframe",
    "output_schema",
    "score_frame",
    "score_texts",
    "part_texts",
    "with_output_columns",
]

OUTPUT_COLUMNS = [
    "label",
    "probabilities",
    "status",
    "reason",
    "message",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "cached",
    "artifact_tag",
    "model",
    "scored_at",
]


def check_output_names(columns: Sequence[object], *, prefix: str = "") -> None:
    """Refuse a ``prefix`` under which an output column would overwrite one of ``columns``.

    The input's own ``label`` is often the true label, kept for ``batch rai``.
    """
    taken = [prefix + c for c in OUTPUT_COLUMNS if prefix + c in columns]
    if taken:
        hint = "choose another --prefix" if prefix else "pass --prefix, e.g. --prefix predicted_"
        raise LabelwiseError(
            f"the input already has column(s) {', '.join(taken)}, which the output adds; {hint}"
        )


def part_texts(part: pa.Table, text_col: str) -> list[str]:
    """The texts of a part's ``text_col``, as strings ("" where missing)."""
    import pyarrow as pa

    column = part[text_col]
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    return ["" if t is None else t for t in column.to_pylist()]


def with_output_columns(table: pa.Table, outputs: pa.Table, *, prefix: str = "") -> pa.Table:
    """``table`` with ``outputs``' columns appended as ``prefix + name`` (Arrow, no copy of the input)."""
    check_output_names(table.column_names, prefix=prefix)
    for column in OUTPUT_COLUMNS:
        table = table.append_column(prefix + column, outputs[column])
    return table


@dataclass(frozen=True)
class ScoredTable:
    """A table written by ``batch score``: its rows, and the prefix its output columns carry."""

    frame: pd.DataFrame
    prefix: str

    def column(self, name: str) -> str:
        """The table's name for output column ``name`` (``label`` -> ``predicted_label``)."""
        return self.prefix + name

    def get(self, name: str) -> pd.Series | None:
        column = self.column(name)
        return self.frame[column] if column in self.frame.columns else None


def read_scored(path: Path, *, required: dict[str, str] | None = None) -> ScoredTable:
    """Read a ``batch score`` output, whatever ``--prefix`` it was written with."""
    frame = read_table(path, required=required)
    # The prefix is what precedes both "label" and "artifact_tag" in the table's own columns.
    prefixes = {
        str(c)[: -len("artifact_tag")]
        for c in frame.columns
        if str(c).endswith("artifact_tag") and f"{str(c)[: -len('artifact_tag')]}label" in frame.columns
    }
    if not prefixes and "label" in frame.columns:
        prefixes = {""}  # predictions made elsewhere, in a plain label column
    if len(prefixes) != 1:
        found = "several sets of" if prefixes else "no"
        raise LabelwiseError(
            f"{path} has {found} predicted-label columns (label, or PREFIXlabel with PREFIXartifact_tag): "
            "give it a file written by labelwise batch score"
        )
    return ScoredTable(frame=frame, prefix=prefixes.pop())


class Runner(Protocol):
    """Another way to send texts to the model than one request each: ``each`` yields
    ``(index, prediction or error)`` like ``ClassifierRuntime.aclassify_each``."""

    price_factor: float
    """The price against one request per text."""

    def each(self, texts: Sequence[str]) -> AsyncIterator[tuple[int, Prediction | BackendError]]: ...


@dataclass
class ScoreSummary:
    """What scoring did. ``unique_texts`` counts distinct texts within each part (a text repeated
    across parts is answered from the cache there)."""

    rows: int
    unique_texts: int
    from_cache: int
    scored: int
    failed_rows: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    seconds: float

    @classmethod
    def total(cls, parts: Sequence[ScoreSummary], *, seconds: float) -> ScoreSummary:
        """The parts' figures added up, over ``seconds`` of wall time."""
        added = {
            name: sum(getattr(p, name) for p in parts)
            for name in cls.__dataclass_fields__
            if name != "seconds"
        }
        return cls(**added, seconds=seconds)


def read_probabilities(raw: Any) -> dict[str, float] | None:
    """The ``probabilities`` cell of a scored table (JSON text, or a mapping in JSONL/Parquet)."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    probabilities = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return {str(k): float(v) for k, v in probabilities.items()} or None


def status(reason: Reason | None) -> str:
    """A scored row's status: ``ok``, ``empty`` (nothing to classify), ``no_label`` or ``error``."""
    if reason is None:
        return "ok"
    if reason is Reason.EMPTY_TEXT:
        return "empty"
    return "error" if reason.is_failure else "no_label"


def _failed(error: BackendError, tag: str) -> dict[str, Any]:
    return {"status": status(error.kind), "reason": error.kind.value, "message": str(error), "cached": False,
            "artifact_tag": tag}  # fmt: skip


def _row(prediction: Prediction, *, cached: bool, scored_at: str) -> dict[str, Any]:
    return {
        "label": prediction.label,
        "probabilities": json.dumps(prediction.probabilities) if prediction.probabilities else None,
        "status": status(prediction.reason),
        "reason": prediction.reason.value if prediction.reason else None,
        "message": prediction.message,
        "prompt_tokens": 0 if cached else prediction.prompt_tokens,
        "completion_tokens": 0 if cached else prediction.completion_tokens,
        "latency_s": prediction.latency_s,
        "cached": cached,
        "artifact_tag": prediction.artifact_tag,
        "model": prediction.model,
        "scored_at": scored_at,
    }


def output_schema(prefix: str = "") -> pa.Schema:
    """The types of the output columns, the same in every part whatever its rows hold."""
    import pyarrow as pa

    types = {"prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "latency_s": pa.float64(),
             "cached": pa.bool_()}  # fmt: skip
    return pa.schema([(prefix + c, types.get(c, pa.string())) for c in OUTPUT_COLUMNS])


async def score_texts(
    texts: Sequence[str],
    classifier: ClassifierRuntime,
    *,
    cache: ResultCache | None = None,
    on_progress: Callable[..., None] | None = None,
    via: Runner | None = None,
) -> tuple[pa.Table, ScoreSummary]:
    """Score ``texts``; returns the output columns (a row per text, in order) and a summary.

    Identical texts are scored once; texts already in ``cache`` are not scored again; every
    finished text is committed to ``cache`` at once. A text whose backend call fails after
    retries keeps its rows, with status ``error`` and the error, and is not cached.
    ``on_progress(rows, cached=...)`` is told of finished rows, those from the cache apart.
    ``via`` sends the texts another way than one request each (the Batch API).
    """
    import time

    import pyarrow as pa

    started = time.perf_counter()
    tag = str(classifier.tag_)
    keys = [text_key(t) for t in texts]
    unique: dict[str, str] = dict(zip(keys, texts, strict=True))
    position = {k: i for i, k in enumerate(unique)}
    done = cache.get_many(tag, unique) if cache is not None else {}
    results: dict[str, tuple[Prediction | BackendError, bool]] = {k: (p, True) for k, p in done.items()}
    counts = Counter(keys)
    if on_progress is not None and done:
        on_progress(sum(counts[k] for k in done), cached=True)
    todo = [k for k in unique if k not in done]
    each = via.each if via is not None else classifier.aclassify_each
    async for index, outcome in each([unique[k] for k in todo]):
        key = todo[index]
        results[key] = (outcome, False)
        # Failures are tried again next run; an empty text costs nothing to redo.
        if cache is not None and isinstance(outcome, Prediction) and outcome.reason is not Reason.EMPTY_TEXT:
            cache.put(key, outcome)
        if on_progress is not None:
            on_progress(counts[key])
    # One output row per distinct text, then repeated for its rows.
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = [
        _failed(outcome, tag)
        if isinstance(outcome, BackendError)
        else _row(outcome, cached=c, scored_at=scored_at)
        for outcome, c in (results[k] for k in unique)
    ]
    distinct = pa.Table.from_pylist(rows, schema=output_schema())
    outputs = distinct.take(pa.array([position[k] for k in keys], type=pa.int64()))
    fresh = [p for p, _ in (results[k] for k in todo) if isinstance(p, Prediction)]
    prompt = sum(p.prompt_tokens for p in fresh)
    completion = sum(p.completion_tokens for p in fresh)
    failed = {k for k in unique if isinstance(results[k][0], BackendError)}
    summary = ScoreSummary(
        rows=len(keys),
        unique_texts=len(unique),
        from_cache=len(done),
        scored=len(todo),
        failed_rows=sum(counts[k] for k in failed),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=classifier.artifact_.spec.backend.cost_usd(prompt, completion)
        * (via.price_factor if via is not None else 1.0),
        seconds=time.perf_counter() - started,
    )
    return outputs, summary


async def score_frame(
    frame: pd.DataFrame,
    classifier: ClassifierRuntime,
    *,
    text_col: str = "text",
    cache: ResultCache | None = None,
) -> tuple[pd.DataFrame, ScoreSummary]:
    """Score ``frame[text_col]``; returns the frame with the output columns added, in input order."""
    check_output_names(list(frame.columns))
    texts = frame[text_col].fillna("").astype(str).tolist()
    outputs, summary = await score_texts(texts, classifier, cache=cache)
    scored = frame.reset_index(drop=True).copy()
    for column, values in outputs.to_pandas().items():
        scored[column] = values.to_numpy()
    return scored, summary


def score_dataframe(
    frame: pd.DataFrame,
    classifier: ClassifierRuntime | str,
    *,
    text_col: str = "text",
    cache: ResultCache | None = None,
    max_concurrency: int = 16,
) -> pd.DataFrame:
    """Score a DataFrame from a notebook or script: ``score_dataframe(df, "yelp-few-shot:latest")``.

    Returns a copy with label, probabilities, status, error and the other output columns.
    """
    from ..core import run_sync

    if isinstance(classifier, str):
        classifier = ClassifierRuntime.load(classifier, max_concurrency=max_concurrency)

    async def run() -> pd.DataFrame:
        async with classifier:
            scored, _ = await score_frame(frame, classifier, text_col=text_col, cache=cache)
            return scored

    return run_sync(run())
