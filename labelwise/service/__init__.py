"""Service: the BentoML service for online prediction, metrics and feedback capture.

Imports ``labelwise.packaging`` only, never ``batch`` or ``evaluation``, so the serving image
stays small. ``bentoml serve labelwise.service:ClassifierService`` serves the artifact named by
``LABELWISE_MODEL`` (or ``--arg model=NAME:VERSION``).
"""

from ._app import ClassifierApp
from ._args import ServiceArgs
from ._errors import (
    BackendDown,
    BackendTimedOut,
    BadGateway,
    InvalidInput,
    ServiceError,
    UnknownLabel,
    UnknownPrediction,
)
from ._schemas import (
    ArtifactSummary,
    ClassifyBatchRequest,
    ClassifyBatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    ConfusionMatrix,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackSummary,
    LabelSummary,
    ServiceMetadata,
    SummaryRequest,
)
from ._service import ClassifierService
from ._settings import ServiceSettings
from ._store import PredictionStore

__all__ = [
    "ArtifactSummary",
    "BackendDown",
    "BackendTimedOut",
    "BadGateway",
    "ClassifierApp",
    "ClassifierService",
    "ClassifyBatchRequest",
    "ClassifyBatchResponse",
    "ClassifyRequest",
    "ClassifyResponse",
    "ConfusionMatrix",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackSummary",
    "InvalidInput",
    "LabelSummary",
    "PredictionStore",
    "ServiceArgs",
    "ServiceError",
    "ServiceMetadata",
    "ServiceSettings",
    "SummaryRequest",
    "UnknownLabel",
    "UnknownPrediction",
]
