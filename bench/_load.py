"""Helpers the service benchmarks share: free ports, readiness (from tests.serve_process), a load."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
from labelwise.core import free_port
from tests.serve_process import wait_ready

__all__ = ["free_port", "measure", "stop_all", "wait_ready"]


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
        process.wait(timeout=30)


async def _load(url: str, texts: list[str], concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(texts)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for text in queue:
                started = time.perf_counter()
                response = await client.post("/classify", json={"text": text})
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, len(texts) / elapsed, errors


def served_home() -> Path:
    """A throwaway model store and labelwise home for the servers this process starts."""
    import os
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="labelwise-bench-"))
    os.environ.update(BENTOML_HOME=str(home / "bentoml"), LABELWISE_HOME=str(home / "labelwise"))
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each server makes its own
    return home


def measure(name: str, url: str, texts: list[str], *, concurrency: int) -> dict[str, float]:
    """POST each text to ``url``/classify, ``concurrency`` at a time; print and return the figures."""
    latencies, rps, errors = asyncio.run(_load(url, texts, concurrency))
    cuts = statistics.quantiles(latencies, n=100)
    result = {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "rps": rps, "errors": errors}
    timing = f"p50 {result['p50_ms']:7.1f} ms   p99 {result['p99_ms']:7.1f} ms"
    print(f"{name:<12} {timing}   {rps:7.1f} req/s   errors {errors}", flush=True)
    return result
