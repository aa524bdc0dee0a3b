"""Scoring on Ray Data: the same per-batch code as the local engine, across a Ray cluster.

Each Ray task gets the verified artifact itself (not a tag), so workers need no access to the
model store; a worker scores its batch with ``score_frame`` exactly as the local engine does.
Deduplication happens per batch, and this engine keeps no cache or checkpoint: a cluster job
that is interrupted starts again.
"""

from __future__ import annotations

import pandas as pd

from ..core import LabelwiseError
from ..packaging import ClassifierArtifact, ClassifierRuntime
from ._score import ScoreSummary, score_dataframe

__all__ = ["score_with_ray"]


def _score_batch(
    batch: pd.DataFrame, *, artifact: ClassifierArtifact, text_col: str, concurrency: int
) -> pd.DataFrame:
    return score_dataframe(
        batch, ClassifierRuntime(artifact=artifact, max_concurrency=concurrency), text_col=text_col
    )


def score_with_ray(
    frame: pd.DataFrame,
    artifact: ClassifierArtifact,
    *,
    text_col: str = "text",
    address: str | None = None,
    batch_size: int = 256,
    concurrency: int = 16,
) -> tuple[pd.DataFrame, ScoreSummary]:
    """Score ``frame`` on Ray Data (``address``: a cluster, or None for a local Ray instance)."""
    import time

    try:
        import ray
    except ImportError:
        raise LabelwiseError("--engine ray needs the 'ray' extra: pip install 'labelwise[ray]'") from None
    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # Rows come back in input order, as with the local engine.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    dataset = ray.data.from_pandas(frame.reset_index(drop=True))
    # Ray's stubs type the function as taking the batch alone; fn_kwargs supplies the rest.
    scored_ds = dataset.map_batches(
        _score_batch,  # type: ignore[arg-type]
        batch_format="pandas",
        batch_size=batch_size,
        fn_kwargs={"artifact": artifact, "text_col": text_col, "concurrency": concurrency},
    )
    scored = scored_ds.to_pandas().reset_index(drop=True)
    ok = scored[scored["status"] != "error"]
    prompt, completion = int(ok["prompt_tokens"].sum()), int(ok["completion_tokens"].sum())
    summary = ScoreSummary(
        rows=len(scored),
        unique_texts=int(scored[text_col].nunique()),
        from_cache=0,
        scored=len(scored),
        failed_rows=int((scored["status"] == "error").sum()),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=artifact.spec.backend.cost_usd(prompt, completion),
        seconds=time.perf_counter() - started,
    )
    return scored, summary
