"""Latency and throughput of ``/classify`` against a bare Starlette app, same fake backend.

Both servers call the same fake OpenAI-compatible backend (its own process, fixed latency) and
take the same load from this script (asyncio + httpx, fixed concurrency), one after the other.
labelwise does more per request than the peer: validation, parsing into a label, metrics, and a
committed row in the SQLite prediction store. The ratios show what that costs.

    .venv/bin/python bench/service_overhead.py [--requests 2000] [--concurrency 16] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PEERS = str(REPO / "bench" / "_peers.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


async def load(url: str, *, requests: int, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for i in queue:
                started = time.perf_counter()
                response = await client.post("/classify", json={"text": f"review {i}: great food"})
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, requests / elapsed, errors


def measure(name: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    asyncio.run(load(url, requests=min(200, args.requests), concurrency=args.concurrency))  # warm up
    latencies, rps, errors = asyncio.run(load(url, requests=args.requests, concurrency=args.concurrency))
    cuts = statistics.quantiles(latencies, n=100)
    result = {"p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000, "rps": rps, "errors": errors}
    timing = f"p50 {result['p50_ms']:7.1f} ms   p99 {result['p99_ms']:7.1f} ms"
    print(f"{name:<10} {timing}   {rps:7.1f} req/s   errors {errors}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="fake backend latency, seconds")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-bench-"))
    env = {**os.environ, "BENTOML_HOME": str(home / "bentoml"), "LABELWISE_HOME": str(home / "labelwise")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    backend_port, bare_port, service_port = free_port(), free_port(), free_port()
    base_url = f"http://127.0.0.1:{backend_port}/v1"
    processes = [
        subprocess.Popen([sys.executable, PEERS, "backend", str(backend_port), str(args.latency)], env=env)
    ]
    try:
        wait_ready(f"{base_url}/models", processes[0])
        spec = home / "spec.yaml"
        spec.write_text(
            "name: bench-service\n"
            "task: {labels: [negative, neutral, positive]}\n"
            "technique: {kind: zero_shot, template: 'Sentiment ({labels}) of: {text}'}\n"
            f"backend: {{provider: openai_compatible, model: fake-model, base_url: '{base_url}'}}\n"
        )
        cli = [sys.executable, "-m", "labelwise.cli"]
        subprocess.run([*cli, "package", str(spec)], env=env, check=True, capture_output=True)
        processes.append(subprocess.Popen([sys.executable, PEERS, "bare", str(bare_port), base_url], env=env))
        processes.append(
            subprocess.Popen(
                [*cli, "serve", "bench-service", "--port", str(service_port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
        wait_ready(f"http://127.0.0.1:{bare_port}/", processes[1])
        wait_ready(f"http://127.0.0.1:{service_port}/readyz", processes[2])
        print(
            f"{args.requests} requests at concurrency {args.concurrency}, fake backend latency "
            f"{args.latency * 1000:.0f} ms, one worker each"
        )
        bare = measure("bare app", f"http://127.0.0.1:{bare_port}", args)
        ours = measure("labelwise", f"http://127.0.0.1:{service_port}", args)
        print(
            f"ratio labelwise/bare: p50 {ours['p50_ms'] / bare['p50_ms']:.2f}x, "
            f"p99 {ours['p99_ms'] / bare['p99_ms']:.2f}x, throughput {ours['rps'] / bare['rps']:.2f}x"
        )
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
