"""Latency and throughput of ``/classify`` against two peers, on the same fake backend.

The peers: a bare BentoML service making the same openai call (bench/_bare_bento.py; what
labelwise adds to BentoML), and a bare Starlette app (what BentoML itself costs). All three call
the same fake OpenAI-compatible backend (its own process, fixed latency), one worker each, and
take the same load from this script (asyncio + httpx, fixed concurrency), one server after the
other, for ``--rounds`` rounds, so that a slow spell of the machine falls on all of them.
labelwise does more per request: validation, parsing into a label, metrics, and a logged row in
the SQLite prediction store. The ratios show what that costs.

    .venv/bin/python bench/service_overhead.py [--requests 2000] [--concurrency 16] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-bench-"))
    env = {**os.environ, "BENTOML_HOME": str(home / "bentoml"), "LABELWISE_HOME": str(home / "labelwise")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    backend_port, bare_port, bento_port, service_port = free_port(), free_port(), free_port(), free_port()
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
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        processes.append(subprocess.Popen([sys.executable, PEERS, "bare", str(bare_port), base_url], env=env))
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bentoml",
                    "serve",
                    "_bare_bento:BareService",
                    "--working-dir",
                    str(REPO / "bench"),
                    "--port",
                    str(bento_port),
                ],
                env={**env, "BARE_BASE_URL": base_url},
                **quiet,
            )  # fmt: skip
        )
        processes.append(
            subprocess.Popen([*cli, "serve", "bench-service", "--port", str(service_port)], env=env, **quiet)
        )
        servers = {
            "starlette": f"http://127.0.0.1:{bare_port}",
            "bentoml": f"http://127.0.0.1:{bento_port}",
            "labelwise": f"http://127.0.0.1:{service_port}",
        }
        wait_ready(f"{servers['starlette']}/", processes[1])
        wait_ready(f"{servers['bentoml']}/readyz", processes[2])
        wait_ready(f"{servers['labelwise']}/readyz", processes[3])
        print(
            f"{args.requests} requests a round at concurrency {args.concurrency}, fake backend latency "
            f"{args.latency * 1000:.0f} ms, one worker each"
        )
        texts = [f"review {i}: great food" for i in range(args.requests)]
        for url in servers.values():
            measure("(warm-up)", url, texts[:200], concurrency=args.concurrency)
        by_round: dict[str, list[dict[str, float]]] = {"bentoml": [], "starlette": []}
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}")
            got = {n: measure(n, url, texts, concurrency=args.concurrency) for n, url in servers.items()}
            ours = got["labelwise"]
            for peer in ("bentoml", "starlette"):
                theirs = got[peer]
                ratios = {key: ours[key] / theirs[key] for key in ("rps", "p50_ms", "p99_ms")}
                by_round[peer].append(ratios)
                print(
                    f"  labelwise / {peer}: throughput {ratios['rps']:.2f}x, "
                    f"p50 {ratios['p50_ms']:.2f}x, p99 {ratios['p99_ms']:.2f}x"
                )
        print(f"median of {args.rounds} rounds")
        for peer, rounds in by_round.items():
            median = {key: statistics.median(r[key] for r in rounds) for key in ("rps", "p50_ms", "p99_ms")}
            print(
                f"  labelwise / {peer}: throughput {median['rps']:.2f}x, "
                f"p50 {median['p50_ms']:.2f}x, p99 {median['p99_ms']:.2f}x"
            )
    finally:
        stop_all(processes)


if __name__ == "__main__":
    main()
