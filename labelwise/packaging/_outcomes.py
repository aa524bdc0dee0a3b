"""What classifying one text gives: a ``Prediction``, and when it has no label, a ``Reason``.

The reason is an enum for code (metrics, the prediction store, batch status and caching all
branch on it); ``Prediction.message`` says the same for people. Backend errors carry a reason
too (``BackendError.kind``), so a failed row and an unreadable answer are told apart the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict

__all__ = ["Prediction", "Reason", "probability_matrix"]


class Reason(StrEnum):
    """Why a text got no label. The values are stable: they are metric labels and stored data."""

    EMPTY_TEXT = "empty_text"
    """The input was empty or blank; nothing was sent."""
    EMPTY_OUTPUT = "empty_output"
    """The model answered nothing."""
    NO_LABEL = "no_label"
    """The answer names no label."""
    AMBIGUOUS = "ambiguous"
    """The answer names several labels, none standing first."""
    NOT_JSON = "not_json"
    """A json_schema answer that is not JSON (cut short by max_tokens or stop?)."""
    NO_LOGPROBS = "no_logprobs"
    """The backend returned no logprobs."""
    NO_LABEL_TOKEN = "no_label_token"
    """No label token among the top logprobs."""
    BELOW_THRESHOLD = "below_threshold"
    """The top probability is below the calibration's abstain threshold."""
    RATE_LIMITED = "rate_limited"
    BACKEND_TIMEOUT = "backend_timeout"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_UNREACHABLE = "backend_unreachable"
    BACKEND_BAD_REQUEST = "backend_bad_request"
    BACKEND_AUTH = "backend_auth"
    MALFORMED_RESPONSE = "malformed_response"
    BACKEND_ERROR = "backend_error"

    @property
    def is_failure(self) -> bool:
        """A backend failure (the text was not classified), not an answer without a label."""
        return self in _FAILURES


_FAILURES = frozenset(
    {
        Reason.RATE_LIMITED,
        Reason.BACKEND_TIMEOUT,
        Reason.BACKEND_UNAVAILABLE,
        Reason.BACKEND_UNREACHABLE,
        Reason.BACKEND_BAD_REQUEST,
        Reason.BACKEND_AUTH,
        Reason.MALFORMED_RESPONSE,
        Reason.BACKEND_ERROR,
    }
)


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
