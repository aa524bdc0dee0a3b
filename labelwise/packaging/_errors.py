"""Exceptions raised by labelwise.

The hierarchy::

    LabelwiseError
    ├── SpecError (ValueError)                a classifier spec is invalid
    ├── MissingVariables (KeyError)           a template was rendered without a variable
    ├── ArtifactError
    │   ├── ArtifactNotFound (KeyError)       no artifact with that tag in the store
    │   └── ArtifactIntegrityError            stored files do not match their content hash
    ├── ProbabilitiesUnavailable (AttributeError)
    │                                         the scoring mode gives no probabilities
    └── BackendError                          a provider call failed
        ├── RateLimited                       HTTP 429; carries ``retry_after``
        ├── BackendTimeout                    no answer within the timeout
        ├── BackendUnavailable                5xx, local server down
        │   └── BackendUnreachable            no connection (refused, DNS, network down)
        ├── BackendBadRequest                 the provider rejected the request (4xx)
        ├── BackendAuthError                  missing or rejected credentials
        └── MalformedResponse                 the provider answered something unreadable

Retry rules work on these types only: provider SDK exceptions are translated once, in
``_backends.translate_provider_errors``.
"""

from __future__ import annotations

from typing import ClassVar

from ..core import LabelwiseError
from ._outcomes import Reason

__all__ = [
    "LabelwiseError",  # the base of this hierarchy, from labelwise.core
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFound",
    "BackendAuthError",
    "BackendBadRequest",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BackendUnreachable",
    "LabelwiseError",
    "MalformedResponse",
    "MissingVariables",
    "ProbabilitiesUnavailable",
    "RateLimited",
    "SpecError",
]


class SpecError(LabelwiseError, ValueError):
    """Raised when a classifier spec fails validation; the message names each bad field."""


class MissingVariables(LabelwiseError, KeyError):
    """Raised when a template is rendered without a value for one of its variables."""


class ArtifactError(LabelwiseError):
    """Raised when an artifact cannot be stored, found or loaded."""


class ArtifactNotFound(ArtifactError, KeyError):
    """Raised when no artifact with the given tag is in the store."""


class ArtifactIntegrityError(ArtifactError):
    """Raised when an artifact's files do not match the content hash it was stored with."""


class ProbabilitiesUnavailable(LabelwiseError, AttributeError):
    """Raised by ``predict_proba`` when the artifact's scoring mode gives no probabilities."""


class BackendError(LabelwiseError):
    """Raised when a call to the model provider fails."""

    kind: ClassVar[Reason] = Reason.BACKEND_ERROR
    retryable: ClassVar[bool] = False
    retry_after: float | None = None  # seconds the provider asked to wait (429 only)

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @staticmethod
    def from_kind(kind: Reason, message: str, *, retry_after: float | None = None) -> BackendError:
        """The error of that kind, e.g. raised again after crossing a process boundary."""
        return _BY_KIND.get(kind, BackendError)(message, retry_after=retry_after)


class RateLimited(BackendError):
    """Raised when the provider answers HTTP 429."""

    kind = Reason.RATE_LIMITED
    retryable = True


class BackendTimeout(BackendError):
    """Raised when the provider does not answer within the configured timeout."""

    kind = Reason.BACKEND_TIMEOUT
    retryable = True


class BackendUnavailable(BackendError):
    """Raised when the provider cannot be reached or answers with a server error."""

    kind = Reason.BACKEND_UNAVAILABLE
    retryable = True


class BackendUnreachable(BackendUnavailable):
    """Raised when no connection to the provider can be made (refused, DNS, network down)."""

    kind = Reason.BACKEND_UNREACHABLE


class BackendBadRequest(BackendError):
    """Raised when the provider rejects the request itself (HTTP 4xx other than 401/403/429)."""

    kind = Reason.BACKEND_BAD_REQUEST


class BackendAuthError(BackendError):
    """Raised when credentials are missing or the provider rejects them."""

    kind = Reason.BACKEND_AUTH


class MalformedResponse(BackendError):
    """Raised when the provider's answer cannot be read (bad JSON, missing fields)."""

    kind = Reason.MALFORMED_RESPONSE


def _subclasses(cls: type[BackendError]) -> list[type[BackendError]]:
    return [cls] + [sub for direct in cls.__subclasses__() for sub in _subclasses(direct)]


_BY_KIND: dict[Reason, type[BackendError]] = {cls.kind: cls for cls in _subclasses(BackendError)}
