"""``Reason``: why a text got no label, or why its call failed; one enum for code everywhere.

Metrics, the prediction store, batch status and caching branch on it, and a provider call's
errors carry one (``BackendError.kind``), so a failed row and an unreadable answer are told apart
the same way.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


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
    QUOTA_EXHAUSTED = "quota_exhausted"
    """The account's quota or credit is spent (a billing matter): retrying cannot help."""
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
        Reason.QUOTA_EXHAUSTED,
        Reason.BACKEND_TIMEOUT,
        Reason.BACKEND_UNAVAILABLE,
        Reason.BACKEND_UNREACHABLE,
        Reason.BACKEND_BAD_REQUEST,
        Reason.BACKEND_AUTH,
        Reason.MALFORMED_RESPONSE,
        Reason.BACKEND_ERROR,
    }
)
