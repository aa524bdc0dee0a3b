"""Errors of specs, templates and artifacts.

The hierarchy (``LabelwiseError`` and ``SpecError`` are in ``labelwise.core``, a provider call's
errors in ``labelwise.backends``)::

    LabelwiseError
    ├── SpecError (ValueError)                a classifier spec is invalid
    ├── MissingVariables (KeyError)           a template was rendered without a variable
    ├── ArtifactError
    │   ├── ArtifactNotFound (KeyError)       no artifact with that tag in the store
    │   └── ArtifactIntegrityError            stored files do not match their content hash
    ├── ProbabilitiesUnavailable (AttributeError)
    │                                         the scoring mode gives no probabilities
    └── BackendError                          a provider call failed (labelwise.backends)
"""

from __future__ import annotations

from ..core import LabelwiseError

__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFound",
    "MissingVariables",
    "ProbabilitiesUnavailable",
]


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
