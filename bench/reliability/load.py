"""A bounded load run against ``labelwise serve`` with 2 workers and a fast fake backend.

Fixed concurrency for a fixed time: requests per second, p50/p99 latency, error rate, and the
resident memory of every server process after warm-up and at the end of each minute. A leak
shows as RSS that keeps climbing minute after minute; a one-off rise while caches fill does not.

    .venv/bin/python bench/reliability/load.py [--minutes 3] [--concurrency 32] [--latency 0.005]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ holds the harness
from labelwise.core import free_port
from labelwise.packaging import ClassifierSpec, package
from tests.serve_process import ServeProcess

PEERS = str(Path(__file__).resolve().parent.parent / "_peers.py")


def rss_mib(pids: list[int]) -> list[float]:
    return [psutil.Process(pid).memory_info().rss / 2**20 for pid in pids]


def mib(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


async def run_for(url: str, seconds: float, concurrency: int) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = sent = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker(w: int) -> None:
            nonlocal errors, sent
            while time.monotonic() < deadline:
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post("/classify", json={"text": f"review {w}-{sent}: great food"})
                    errors += response.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return latencies, errors, sent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.005, help="fake backend latency, seconds")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-load-"))
    os.environ.update(BENTOML_HOME=str(home / "bentoml"), LABELWISE_HOME=str(home / "labelwise"))
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, PEERS, "backend", str(backend_port), str(args.latency)])
    base_url = f"http://127.0.0.1:{backend_port}/v1"
    try:
        artifact, _ = package(
            ClassifierSpec.from_dict(
                {
                    "name": "load",
                    "task": {"labels": ["negative", "neutral", "positive"]},
                    "technique": {
                        "kind": "zero_shot",
                        "template": "Sentiment ({labels}) of: {text}\nAnswer:",
                    },
                    "backend": {"provider": "openai_compatible", "model": "fake-model", "base_url": base_url},
                }
            )
        )
        db = f"sqlite:///{home / 'predictions.db'}"
        with ServeProcess(str(artifact.tag), db_url=db, log=home / "serve.log", workers=2) as server:
            asyncio.run(run_for(server.url, 20, args.concurrency))  # warm-up: imports, pools, caches
            pids = server.worker_pids()
            baseline = rss_mib(pids)
            setting = (
                f"{args.minutes:g} min at concurrency {args.concurrency}, backend {args.latency * 1000:g} ms"
            )
            print(f"{setting}, 2 workers; RSS after warm-up (MiB): {mib(baseline)}", flush=True)
            all_latencies: list[float] = []
            total_errors = total_sent = 0
            started = time.monotonic()
            minutes = max(1, round(args.minutes))
            for minute in range(minutes):
                span = args.minutes * 60 / minutes
                latencies, errors, sent = asyncio.run(run_for(server.url, span, args.concurrency))
                all_latencies += latencies
                total_errors += errors
                total_sent += sent
                rss = rss_mib(pids)
                print(
                    f"minute {minute + 1}: {sent / span:6.1f} req/s, errors {errors}, RSS (MiB): {mib(rss)}",
                    flush=True,
                )
            elapsed = time.monotonic() - started
            cuts = statistics.quantiles(all_latencies, n=100)
            growth = [after - before for before, after in zip(baseline, rss, strict=True)]
            rate = f"{total_sent} requests, {total_sent / elapsed:.1f} req/s"
            timing = f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"
            print(f"total: {rate}, {timing}, error rate {total_errors / total_sent:.4%}")
            print(f"RSS growth (MiB) per process: {', '.join(f'{g:+.1f}' for g in growth)}")
    finally:
        backend.terminate()
        backend.wait(timeout=30)


if __name__ == "__main__":
    main()
