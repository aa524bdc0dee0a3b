"""Client-side limits on requests and tokens per minute, as a provider's quota counts them.

The schedule is the generic cell rate algorithm: each request books its share of the minute and
is told when it may go. Providers enforce a minute's quota over shorter windows too ("60,000
requests a minute may be enforced as 1,000 a second"), so only a quarter of a second's worth may
go at once: no 10-second window holds more than 2.5 % over its share.
One ``RateSchedule`` serves one process (``RateLimiter``) or a whole cluster (the Ray engine
keeps one in an actor that every scorer asks).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Limiter", "RateLimiter", "RateSchedule"]

BURST_S = 0.25
"""How far ahead of the steady rate requests may go: a quarter of a second's worth at once."""


class _Quota:
    """One per-minute allowance: the theoretical arrival time of the next unit (GCRA)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.burst = max(BURST_S, self.interval)  # a request can always go, one interval apart
        self.next_free = 0.0

    def earliest(self, now: float) -> float:
        return max(now, self.next_free - self.burst)

    def book(self, amount: float, at: float) -> None:
        self.next_free = max(self.next_free, at) + amount * self.interval


class RateSchedule:
    """When each request may be sent so that requests/min and tokens/min stay under their limits.

    ``delay`` books the request at once, so requests go out in the order they asked; ``hold``
    stops everyone for a while (a provider's ``Retry-After``).
    """

    def __init__(
        self, *, requests_per_minute: float | None = None, tokens_per_minute: float | None = None
    ) -> None:
        self.requests = _Quota(requests_per_minute) if requests_per_minute else None
        self.tokens = _Quota(tokens_per_minute) if tokens_per_minute else None
        self.held_until = 0.0

    def send_at(self, tokens: int, now: float | None = None) -> float:
        """When (``time.time()``) a request of ``tokens`` asking at ``now`` may be sent; booked."""
        now = time.time() if now is None else now
        booked = [(q, amount) for q, amount in ((self.requests, 1), (self.tokens, tokens)) if q is not None]
        at = max([now, self.held_until, *(quota.earliest(now) for quota, _ in booked)])
        for quota, amount in booked:
            quota.book(amount, at)
        return at

    def delay(self, tokens: int, now: float | None = None) -> float:
        """Seconds from ``now`` until a request of ``tokens`` may be sent; booked."""
        now = time.time() if now is None else now
        return self.send_at(tokens, now) - now

    def hold(self, seconds: float, now: float | None = None) -> None:
        """Send nothing for ``seconds``."""
        self.held_until = max(self.held_until, (time.time() if now is None else now) + seconds)


class Limiter(Protocol):
    """What a technique asks before each request: in one process or across a cluster."""

    async def acquire(self, tokens: int) -> None: ...

    def hold(self, seconds: float) -> None: ...


class RateLimiter:
    """Waits before each request so that requests/min and tokens/min stay under their limits."""

    def __init__(
        self, *, requests_per_minute: float | None = None, tokens_per_minute: float | None = None
    ) -> None:
        self.schedule = RateSchedule(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )

    async def acquire(self, tokens: int) -> None:
        wait = self.schedule.delay(tokens)
        if wait > 0:
            await asyncio.sleep(wait)

    def hold(self, seconds: float) -> None:
        self.schedule.hold(seconds)
