"""Retries with exponential backoff and full jitter that honour ``Retry-After``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ._errors import BackendError

if TYPE_CHECKING:
    from ._spec import BackendSpec

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 4
    initial_s: float = 0.5
    max_s: float = 30.0

    @classmethod
    def of(cls, backend: BackendSpec) -> RetryPolicy:
        """The policy a spec's backend block sets."""
        return cls(backend.max_retries, backend.backoff_initial_s, backend.backoff_max_s)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempt)] (attempt counts from 0)."""
        return rng.uniform(0.0, min(self.max_s, self.initial_s * 2**attempt))


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[BackendError, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``call()``, retrying retryable ``BackendError``\\ s.

    A ``Retry-After`` from the provider is a floor on the wait. When it asks for longer than
    ``policy.max_s`` the error is raised at once: waiting that long inside one request helps
    nobody, and the caller can schedule the work later.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call()
        except BackendError as exc:
            if not exc.retryable or attempt >= policy.max_retries:
                raise
            wait = policy.delay(attempt, rng)
            if exc.retry_after is not None:
                if exc.retry_after > policy.max_s:
                    raise
                wait = max(wait, exc.retry_after)
            if on_retry is not None:
                on_retry(exc, wait)
            attempt += 1
            await sleep(wait)
