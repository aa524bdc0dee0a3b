"""Getting a service ready in the background, so that ``/readyz`` answers at once while it does.

BentoML serves no request until every startup hook has returned, and its ``/readyz`` asks each
dependency's in turn: a hook that loads a model or starts the local llama.cpp server for several
seconds leaves probes hanging. Instead the hook starts the work and returns; ``__is_ready__``
answers from its state (503 until done), and requests wait for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Warmup"]

logger = logging.getLogger("labelwise")

Work = Callable[[], Coroutine[Any, Any, None]]


class Warmup:
    """Start-up work run as a task; after a failure the next readiness check tries it again."""

    def __init__(self) -> None:
        self._work: Work | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, work: Work) -> None:
        self._work = work
        self._task = asyncio.ensure_future(work())
        self._task.add_done_callback(self._report)

    @staticmethod
    def _report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("start-up failed (tried again at the next /readyz): %s", task.exception())

    def ready(self) -> bool:
        """The work is done and did not fail; a failed attempt is started again."""
        task = self._task
        if task is None or not task.done():
            return False
        if task.cancelled() or task.exception() is not None:
            if self._work is not None:
                self.start(self._work)
            return False
        return True

    async def wait(self) -> None:
        """Wait until the work is over; a request after a failure tries the backend itself.

        Shielded, so that one request's cancellation does not cancel it for the others.
        """
        if self._task is not None:
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
