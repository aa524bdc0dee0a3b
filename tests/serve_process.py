"""A real ``labelwise serve`` and the load that tests and ``bench/`` put on it.

``ServeProcess`` runs the server; ``kill()`` SIGKILLs all its processes at once, the way a
crashed host or an OOM kill ends them, and ``stop()`` is the orderly SIGINT. ``send_feedback``
writes feedback concurrently and returns what was acknowledged, which is what durability is
judged against.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from labelwise.core import free_port

__all__ = ["ServeProcess", "seed_predictions", "send_feedback", "stored_feedback", "wait_ready"]


def wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout_s: float = 180) -> None:
    """Poll ``url`` until it answers below 500 (/readyz says 503 until the app has started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g} s")


class ServeProcess:
    """``labelwise serve TAG`` on a free port of 127.0.0.1, with its output in ``log``."""

    def __init__(
        self,
        tag: str,
        *,
        db_url: str,
        log: Path,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.tag = tag
        self.db_url = db_url
        self.log = log
        self.workers = workers
        self.port = port or free_port()
        self.env = {k: v for k, v in (env or os.environ).items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 120) -> ServeProcess:
        command = [
            sys.executable, "-m", "labelwise.cli", "serve", self.tag, "--port", str(self.port),
            "--workers", str(self.workers), "--db-url", self.db_url,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(f"{self.url}/readyz", self.process, timeout_s=timeout_s)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None
        return self

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def worker_pids(self) -> list[int]:
        """Every process of the server (the arbiter, its workers, any runner)."""
        import psutil

        if self.process is None:
            return []
        root = psutil.Process(self.process.pid)
        return [root.pid, *(child.pid for child in root.children(recursive=True))]

    def kill(self) -> None:
        """SIGKILL every server process at once: no shutdown hook, no flush, like a power cut.

        The workers are found by walking the process tree: they do not all stay in the
        server's process group.
        """
        if self.process is None or self.process.poll() is not None:
            return
        pids = self.worker_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _post_idempotent(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> httpx.Response:
    """POST once more on a fresh connection when the first one closed before any response.

    Feedback is an upsert, so sending it twice is safe, and a client of it should retry: under
    64 concurrent keep-alive clients the server now and then closes a connection as a request
    arrives on it (a ReadError with no response and no log line; 1 to 13 in 2,000 writes).
    """
    try:
        return await client.post(path, json=body)
    except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
        print(f"connection closed before a response ({exc!r}); sending again", file=sys.stderr)
        return await client.post(path, json=body)


async def _send_feedback(
    url: str, prediction_ids: list[str], concurrency: int, on_acknowledged: Callable[[int], None] | None
) -> tuple[set[str], int]:
    acknowledged: set[str] = set()
    failures = 0
    queue = iter(prediction_ids)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def writer() -> None:
            nonlocal failures
            for prediction_id in queue:
                body = {"prediction_id": prediction_id, "thumbs": "down", "correct_label": None}
                try:
                    response = await _post_idempotent(client, "/feedback", body)
                except httpx.HTTPError as exc:
                    failures += 1  # the server went away: this write was never acknowledged
                    print(f"feedback not sent: {exc!r}", file=sys.stderr)
                    continue
                if response.status_code in (200, 201):
                    acknowledged.add(prediction_id)
                    if on_acknowledged is not None:
                        on_acknowledged(len(acknowledged))
                else:
                    failures += 1
                    print(f"feedback refused: {response.status_code} {response.text[:300]}", file=sys.stderr)

        await asyncio.gather(*(writer() for _ in range(concurrency)))
    return acknowledged, failures


def send_feedback(
    url: str,
    prediction_ids: list[str],
    *,
    concurrency: int = 64,
    on_acknowledged: Callable[[int], None] | None = None,
) -> tuple[set[str], int]:
    """POST a thumbs-down for each id, ``concurrency`` at a time: (acknowledged ids, failed writes).

    ``on_acknowledged(count)`` is called after each acknowledged write (a crash test kills the
    server from there, at a point in the load that does not depend on the machine's speed).
    """
    return asyncio.run(_send_feedback(url, prediction_ids, concurrency, on_acknowledged))


def seed_predictions(db_url: str, tag: str, count: int) -> list[str]:
    """``count`` prediction rows to give feedback on, inserted in one transaction; their ids."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from labelwise.store import PredictionRow, PredictionStore

    ids = [uuid.uuid4().hex for _ in range(count)]
    store = PredictionStore.from_url(db_url)
    try:
        with Session(store.engine) as session, session.begin():
            session.add_all(
                PredictionRow(
                    id=i, created_at=datetime.now(UTC), artifact_tag=tag, label="neutral", attributes={},
                    model="", text_sha256="0" * 64, text_length=0, latency_s=0.0, prompt_tokens=0,
                    completion_tokens=0,
                )
                for i in ids
            )  # fmt: skip
    finally:
        store.close()
    return ids


def stored_feedback(db_url: str, prediction_ids: list[str]) -> set[str]:
    """Which of ``prediction_ids`` have a feedback record in the store."""
    from sqlalchemy import select

    from labelwise.store import FeedbackRow, PredictionStore

    store = PredictionStore.from_url(db_url)
    found: set[str] = set()
    try:
        with store.engine.connect() as connection:
            for start in range(0, len(prediction_ids), 1000):
                chunk = prediction_ids[start : start + 1000]
                query = select(FeedbackRow.prediction_id).where(FeedbackRow.prediction_id.in_(chunk))
                found.update(row[0] for row in connection.execute(query))
    finally:
        store.close()
    return found
