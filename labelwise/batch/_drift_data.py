"""Reading what drift is measured on: a scored file (``labelwise batch score``) or the prediction store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import LabelwiseError
from ..monitoring import DriftData
from ..packaging import as_label
from ._score import read_probabilities, read_scored

__all__ = ["load_drift_data"]


def _confidence(raw: Any) -> float:
    probabilities = read_probabilities(raw)
    return max(probabilities.values()) if probabilities else float("nan")


def load_drift_data(
    source: str, *, text_col: str = "text", label_col: str | None = None, since: datetime | None = None
) -> DriftData:
    """A scored file (from ``labelwise batch score``) or the service's prediction store (a DB URL).

    ``label_col``: the scored file's column of true labels, when it has one.
    """
    if "://" in source:
        from ..store import PredictionStore

        store = PredictionStore.from_url(source)
        try:
            rows = list(store.predictions(since=since))
        finally:
            store.close()
        if label_col is not None:
            raise LabelwiseError("--label-col needs a scored file: the prediction store holds no true labels")
        if not rows:
            raise LabelwiseError(
                f"no predictions in {source.split('://')[0]} store" + (f" since {since}" if since else "")
            )
        texts = [r.text for r in rows]
        return DriftData(
            name=f"prediction log ({len(rows)} predictions)",
            labels=[r.label for r in rows],
            confidence=[r.confidence if r.confidence is not None else float("nan") for r in rows],
            lengths=[r.text_length for r in rows],
            texts=None if any(t is None for t in texts) else [str(t) for t in texts],
        )
    path = Path(source)
    required = {text_col: "--text-col", **({label_col: "--label-col"} if label_col else {})}
    table = read_scored(path, required=required)
    frame = table.frame
    found = table.get("probabilities")
    probabilities = found.tolist() if found is not None else [None] * len(frame)
    texts = frame[text_col].fillna("").astype(str).tolist()
    return DriftData(
        name=path.name,
        labels=[
            None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
            for v in frame[table.column("label")]
        ],
        confidence=[_confidence(p) for p in probabilities],
        lengths=[len(t) for t in texts],
        texts=texts,
        truth=None if label_col is None else [None if pd.isna(v) else as_label(v) for v in frame[label_col]],
    )
