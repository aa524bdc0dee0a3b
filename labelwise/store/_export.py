"""Feedback joined with predictions, written as a labelled dataset for ``labelwise eval``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core import Settings, write_table
from ._store import PredictionRow, PredictionStore, true_label

__all__ = ["export_feedback"]

COLUMNS = [
    "text",
    "label",
    "predicted_label",
    "thumbs",
    "signal",
    "correct_label",
    "comment",
    "confidence",
    "artifact_tag",
    "prediction_id",
    "predicted_at",
    "feedback_at",
    "metadata",
]


def export_feedback(
    out: Path, *, db_url: str | None = None, since: datetime | None = None, include_unlabelled: bool = False
) -> int:
    """Write the feedback dataset; returns the number of rows written."""
    store = PredictionStore.from_url(db_url or Settings.from_env().db_url)
    rows: list[dict[str, Any]] = []
    try:
        for prediction, feedback in store.feedback_rows(since=since):
            label = true_label(prediction.label, feedback.thumbs, feedback.correct_label)
            if label is None and not include_unlabelled:
                continue
            row = {
                "thumbs": feedback.thumbs,
                "correct_label": feedback.correct_label,
                "comment": feedback.comment,
            }
            rows.append(_row(prediction, label, row, at=feedback.updated_at))
        # Overrides that name a label, on predictions without thumbs: the label the user chose.
        for prediction, override in store.override_rows(since=since):
            row = {"signal": override.signal, "correct_label": override.label}
            rows.append(_row(prediction, override.label, row, at=override.created_at))
    finally:
        store.close()
    write_table(rows, out, columns=COLUMNS)
    return len(rows)


def _row(
    prediction: PredictionRow, label: str | None, feedback: dict[str, Any], *, at: datetime
) -> dict[str, Any]:
    return {
        "text": prediction.text,
        "label": label,
        "predicted_label": prediction.label,
        **feedback,
        "confidence": prediction.confidence,
        "artifact_tag": prediction.artifact_tag,
        "prediction_id": prediction.id,
        "predicted_at": prediction.created_at.isoformat(),
        "feedback_at": at.isoformat(),
        "metadata": json.dumps(prediction.attributes, ensure_ascii=False, sort_keys=True),
    }
