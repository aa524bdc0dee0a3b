"""Service: the BentoML service for online prediction, metrics and feedback capture.

Imports ``labelwise.core``, ``packaging`` and ``store``, never ``batch`` or ``evaluation``, so
the serving image stays small (``lint-imports`` checks it). ``bentoml serve
labelwise.service:ClassifierService`` serves the artifact named by ``LABELWISE_MODEL`` (or
``--arg model=NAME:VERSION``).
"""

from ..monitoring import ArtifactSummary, ConfusionMatrix, FeedbackSummary, LabelSummary
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
    ClassifyBatchRequest,
    ClassifyBatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    EstimateRequest,
    FeedbackRequest,
    FeedbackResponse,
    ServiceMetadata,
    SummaryRequest,
)
from ._service import ClassifierService

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
    "EstimateRequest",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackSummary",
    "InvalidInput",
    "LabelSummary",
    "ServiceArgs",
    "ServiceError",
    "ServiceMetadata",
    "SummaryRequest",
    "UnknownLabel",
    "UnknownPrediction",
]
