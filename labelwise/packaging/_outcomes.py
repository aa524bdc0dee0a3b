"""What classifying one text gives: a ``Prediction``, and when it has no label, a ``Reason``.

The reason is an enum for code (metrics, the prediction store, batch status and caching all
branch on it); ``Prediction.message`` says the same for people. Backend errors carry a reason
too (``BackendError.kind``), so a failed row and an unreadable answer are told apart the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..core import Reason

__all__ = ["Outcome", "Prediction", "probability_matrix"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What reading one answer gives, before it becomes a ``Prediction`` (a label, or why none)."""

    label: str | None
    probabilities: dict[str, float] | None = None
    reason: Reason | None = None
    message: str | None = None


class Prediction(BaseModel):
    """One classified text.

    ``label`` is ``None`` when there is no label; ``reason`` says why (``message`` for people).
    ``probabilities`` is set by the techniques and scoring modes that give them.
    """

    model_config = ConfigDict(frozen=True)

    label: str | None
    probabilities: dict[str, float] | None = None
    reason: Reason | None = None
    message: str | None = None
    raw_output: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    artifact_tag: str
    model: str = ""
    system_fingerprint: str | None = None
    """The provider's configuration that answered, when it says (the canary watches it change)."""

    @classmethod
    def of_empty_text(cls, tag: str) -> Prediction:
        """No label for an empty text; such a text is never sent to a model."""
        return cls(label=None, reason=Reason.EMPTY_TEXT, message="empty text", artifact_tag=tag)

    @property
    def confidence(self) -> float | None:
        """The largest label probability (also when abstaining); ``None`` without probabilities.

        The one definition of confidence: the prediction store, drift profiles, calibration and
        RAI reports all use it.
        """
        return max(self.probabilities.values()) if self.probabilities else None


def probability_matrix(rows: Sequence[Mapping[str, float] | None], labels: Sequence[str]) -> np.ndarray:
    """An (n, len(labels)) array, columns in ``labels`` order.

    A label missing from a row has probability 0; a row without probabilities is all NaN (the
    caller decides what no information means: left out of a metric, or uniform).
    """
    matrix = np.full((len(rows), len(labels)), np.nan, dtype=float)
    for i, row in enumerate(rows):
        if row:
            matrix[i] = [float(row.get(label, 0.0)) for label in labels]
    return matrix
