"""HTTP errors of the service. Each carries its status; domain errors map onto them here.

ServiceError (LabelwiseError)
├── InvalidInput             400  the request is well-formed JSON but unusable
├── UnknownLabel             400  a label outside the artifact's label set
├── UnknownPrediction        404  feedback for a prediction id that was never issued
├── BadGateway               502  the backend answered something unusable
├── BackendDown              503  the backend is unreachable, failing or rate limiting
└── BackendTimedOut          504  the backend did not answer in time
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse

from ..backends import BackendBadRequest, BackendError, BackendTimeout, MalformedResponse
from ..core import LabelwiseError

__all__ = [
    "BackendDown",
    "BackendTimedOut",
    "BadGateway",
    "InvalidInput",
    "ServiceError",
    "UnknownLabel",
    "UnknownPrediction",
    "http_error",
]


class ServiceError(LabelwiseError):
    """An error with an HTTP status; its message is shown to the client, so it holds no secret."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(self.retry_after)))} if self.retry_after else None
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=headers)


class InvalidInput(ServiceError):
    """Raised when a request's content cannot be used (empty text, text too long)."""

    status = HTTPStatus.BAD_REQUEST


class UnknownLabel(ServiceError):
    """Raised when feedback names a label outside the artifact's label set."""

    status = HTTPStatus.BAD_REQUEST


class UnknownPrediction(ServiceError):
    """Raised when feedback refers to a prediction id the store does not hold."""

    status = HTTPStatus.NOT_FOUND


class BadGateway(ServiceError):
    """Raised when the backend rejected the request or answered with an unreadable body."""

    status = HTTPStatus.BAD_GATEWAY


class BackendDown(ServiceError):
    """Raised when the backend is unreachable, failing or rate limiting after retries."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class BackendTimedOut(ServiceError):
    """Raised when the backend did not answer within its timeout, after retries."""

    status = HTTPStatus.GATEWAY_TIMEOUT


def http_error(exc: LabelwiseError) -> ServiceError:
    """The HTTP error a client sees for ``exc``: the one mapping, used by every route."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, BackendError):
        return _from_backend_error(exc)
    return ServiceError(str(exc))


def _from_backend_error(exc: BackendError) -> ServiceError:
    """A backend failure that persisted after retries."""
    if isinstance(exc, BackendTimeout):
        return BackendTimedOut(f"the model backend timed out: {exc}")
    if isinstance(exc, BackendBadRequest | MalformedResponse):
        return BadGateway(f"the model backend failed: {exc}")
    return BackendDown(f"the model backend is unavailable: {exc}", retry_after=exc.retry_after)
