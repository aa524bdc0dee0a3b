"""Latency and throughput of ``/classify`` against a bare Starlette app, same fake backend.

Both servers call the same fake OpenAI-compatible backend (its own process, fixed latency) and
take the same load from this script (asyncio + httpx, fixed concurrency), one after the other.
labelwise does more per request than the peer: validation, parsing into a label, metrics, and a
committed row in the SQLite prediction store. The ratios show what that costs.

    .venv/bin/python bench/service_overhead.py [--requests 2000] [--concurrency 16] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _load import free_port, measure, stop_all, wait_ready

REPO = Path(__file__).resolve().parent.parent
PEERS = str(REPO / "bench" / "_peers.py")


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
        texts = [f"review {i}: great food" for i in range(args.requests)]
        for url in (f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{service_port}"):
            measure("(warm-up)", url, texts[:200], concurrency=args.concurrency)
        bare = measure("bare app", f"http://127.0.0.1:{bare_port}", texts, concurrency=args.concurrency)
        ours = measure("labelwise", f"http://127.0.0.1:{service_port}", texts, concurrency=args.concurrency)
        print(
            f"ratio labelwise/bare: p50 {ours['p50_ms'] / bare['p50_ms']:.2f}x, "
            f"p99 {ours['p99_ms'] / bare['p99_ms']:.2f}x, throughput {ours['rps'] / bare['rps']:.2f}x"
        )
    finally:
        stop_all(processes)


if __name__ == "__main__":
    main()
