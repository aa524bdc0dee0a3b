"""Errors of a provider call, and the one boundary that turns the SDK's exceptions into them.

The hierarchy (under ``labelwise.core.LabelwiseError``)::

    BackendError                          a provider call failed
    ├── RateLimited                       HTTP 429; carries ``retry_after``
    ├── QuotaExhausted                    HTTP 429 insufficient_quota: billing, never retried
    ├── BackendTimeout                    no answer within the timeout
    ├── BackendUnavailable                5xx, local server down
    │   └── BackendUnreachable            no connection (refused, DNS, network down)
    ├── BackendBadRequest                 the provider rejected the request (4xx)
    ├── BackendAuthError                  missing or rejected credentials
    └── MalformedResponse                 the provider answered something unreadable

Retry rules work on these types only: ``translate_provider_errors`` is the one place that reads
``openai`` SDK exceptions.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import httpx
import openai

from ..core import LabelwiseError, Reason

__all__ = [
    "BackendAuthError",
    "BackendBadRequest",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BackendUnreachable",
    "MalformedResponse",
    "QuotaExhausted",
    "RateLimited",
    "error_for_status",
    "translate_provider_errors",
]


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


class QuotaExhausted(BackendError):
    """Raised when the provider says the account's quota or credit is spent (``insufficient_quota``).

    OpenAI answers it with HTTP 429 like a rate limit, but waiting does not clear it: it is
    never retried.
    """

    kind = Reason.QUOTA_EXHAUSTED


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


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration_s(value: str) -> float | None:
    """Seconds in OpenAI's ``x-ratelimit-reset-*`` form: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``."""
    parts = _DURATION_PART.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def _ratelimit_reset(headers: httpx.Headers) -> float | None:
    """When the exhausted limit resets, from ``x-ratelimit-reset-requests`` / ``-tokens``: the
    limit whose ``x-ratelimit-remaining-*`` is 0, else the sooner of the two."""
    resets = {
        kind: _duration_s(headers[f"x-ratelimit-reset-{kind}"])
        for kind in ("requests", "tokens")
        if f"x-ratelimit-reset-{kind}" in headers
    }
    known = {kind: s for kind, s in resets.items() if s is not None}
    if not known:
        return None
    spent = [s for kind, s in known.items() if headers.get(f"x-ratelimit-remaining-{kind}") == "0"]
    return max(spent) if spent else min(known.values())


def _retry_after(response: httpx.Response | None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date) or
    OpenAI's ``x-ratelimit-reset-*``, in that order."""
    if response is None:
        return None
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return _ratelimit_reset(headers)
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_for_status(
    provider: str, status: int, message: str, *, retry_after: float | None = None, code: str | None = None
) -> BackendError:
    """The labelwise error for an HTTP error status from a provider, live or in a Batch API file."""
    if status == 429 and code == "insufficient_quota":
        return QuotaExhausted(
            f"{provider} says the account's quota is spent (HTTP 429 insufficient_quota): this is "
            "billing, not a rate limit, and waiting will not clear it; check the plan and billing "
            "details of the account whose key is used"
        )
    if status == 429:
        hint = f"; retry after {retry_after:.1f} s" if retry_after is not None else ""
        said = f": {message}" if message else ""
        return RateLimited(
            f"{provider} rate limited the request (HTTP 429){hint}{said}", retry_after=retry_after
        )
    if status in (401, 403):
        return BackendAuthError(
            f"{provider} refused the credentials (HTTP {status}): check the API key "
            "in the environment variable named by backend.api_key_env"
        )
    if status == 408:
        return BackendTimeout(f"{provider} timed out the request (HTTP 408)")
    if status >= 500:
        return BackendUnavailable(f"{provider} failed with HTTP {status}: {message}")
    return BackendBadRequest(f"{provider} rejected the request (HTTP {status}): {message}")


def _code(exc: openai.APIStatusError) -> str | None:
    """The error's ``code`` (``insufficient_quota``, ``rate_limit_exceeded``, ...), if it has one."""
    code = getattr(exc, "code", None)
    return str(code) if code else None


@contextmanager
def translate_provider_errors(provider: str) -> Iterator[None]:
    """Turn ``openai`` SDK exceptions into labelwise ``BackendError``\\ s (the one boundary)."""
    try:
        yield
    except openai.RateLimitError as exc:
        raise error_for_status(
            provider, 429, exc.message, retry_after=_retry_after(exc.response), code=_code(exc)
        ) from exc
    except openai.APITimeoutError as exc:
        raise BackendTimeout(f"{provider} did not answer within the timeout") from exc
    except openai.APIConnectionError as exc:
        raise BackendUnreachable(f"cannot reach {provider}: {exc.__cause__ or exc}") from exc
    except openai.APIResponseValidationError as exc:
        raise MalformedResponse(f"{provider} answered with a body that cannot be read: {exc}") from exc
    except openai.APIStatusError as exc:
        raise error_for_status(provider, exc.status_code, exc.message, code=_code(exc)) from exc
    except openai.OpenAIError as exc:
        raise BackendError(f"{provider} call failed: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"{provider} answered with a body that is not JSON") from exc
