"""The prediction log, written in batches by a background task.

Writing each prediction in a transaction of its own cost a fifth of the service's CPU under load
(SQLAlchemy's unit of work and a commit per row; profiled with py-spy). A request now gets its
prediction id at once and hands the row to this log; one task writes whatever has gathered in
a single multi-row INSERT, in a thread, then the next lot. A lot gathers for ``gather_s`` (20 ms)
after its first row, so that under load a transaction (a connection, BEGIN, commit) serves many
rows rather than one or two.

What is durable when: a row is committed shortly after its response (``gather_s`` and one
write), and before the service stops when it is stopped (SIGTERM, SIGINT). A worker killed
outright (SIGKILL, OOM) loses the rows not yet written. ``/feedback`` for a prediction whose row
is still pending waits for it, so an id a client was given is always accepted; feedback itself
is committed before its response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..store import PredictionStore

__all__ = ["PredictionLog"]

logger = logging.getLogger("bentoml.labelwise")


class PredictionLog:
    """Rows queue here (at most ``capacity``: beyond it, requests wait) and are written in lots."""

    def __init__(self, store: PredictionStore, *, capacity: int = 10_000, gather_s: float = 0.02) -> None:
        self.store = store
        self.capacity = capacity
        self.gather_s = gather_s
        self._pending: list[Mapping[str, Any]] = []
        self._pending_ids: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self._written = asyncio.Condition()

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue rows for writing; waits while the queue is full (the store is falling behind)."""
        async with self._written:
            await self._written.wait_for(lambda: len(self._pending) < self.capacity)
        self._pending.extend(rows)
        self._pending_ids.update(str(row["id"]) for row in rows)
        self._arrived.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="labelwise-prediction-log")

    def is_pending(self, prediction_id: str) -> bool:
        return prediction_id in self._pending_ids

    async def flush(self) -> None:
        """Wait until every row queued so far is written."""
        async with self._written:
            await self._written.wait_for(lambda: not self._pending_ids)

    async def _write_forever(self) -> None:
        while True:
            await self._arrived.wait()
            await asyncio.sleep(self.gather_s)
            self._arrived.clear()
            lot, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.store.log_predictions, lot)
            except Exception:
                # The store is down or refused the lot: keep the rows and try again shortly,
                # rather than lose them (requests wait once the queue is full).
                logger.exception("writing %d predictions to the store failed; retrying", len(lot))
                self._pending = lot + self._pending
                self._arrived.set()
                await asyncio.sleep(1.0)
                continue
            async with self._written:
                self._pending_ids.difference_update(str(row["id"]) for row in lot)
                self._written.notify_all()

    async def aclose(self, *, timeout_s: float = 30.0) -> None:
        """Write what is queued (waiting at most ``timeout_s`` for the store), then stop the writer."""
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            logger.error(
                "the store took over %.0f s: %d predictions not logged", timeout_s, len(self._pending_ids)
            )
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
