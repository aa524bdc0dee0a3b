"""The service and the batch runner under backend faults: 429 storms, 5xx, timeouts, slowness,
refused connections. For each fault: what clients get, how fast, what the metrics counted, and
whether the service answers normally once the backend is back.

A real ``labelwise serve`` (2 workers) in front of a fake OpenAI-compatible backend run by this
script, so that faults can be switched on and off. The artifact allows 2 retries and a 1 s
timeout, which bounds how long a client waits for a failure.

    .venv/bin/python bench/reliability/backend_faults.py [--requests 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ holds the harness
from labelwise.packaging import ClassifierSpec, package
from tests.fake_openai import FakeOpenAIServer
from tests.serve_process import ServeProcess

TIMEOUT_S = 1.0


def spec(base_url: str) -> ClassifierSpec:
    return ClassifierSpec.from_dict(
        {
            "name": "faults",
            "task": {"labels": ["negative", "neutral", "positive"]},
            "technique": {"kind": "zero_shot", "template": "Sentiment ({labels}) of: {text}\nAnswer:"},
            "backend": {
                "provider": "openai_compatible", "model": "fake-model", "base_url": base_url,
                "max_retries": 2, "backoff_initial_s": 0.05, "backoff_max_s": 0.5, "timeout_s": TIMEOUT_S,
            },
        }
    )  # fmt: skip


async def burst(url: str, requests: int) -> tuple[Counter[int], float, str]:
    """``requests`` concurrent /classify calls: status counts, slowest answer, one error message."""
    statuses: Counter[int] = Counter()
    slowest, message = 0.0, ""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(i: int) -> None:
            nonlocal slowest, message
            started = time.perf_counter()
            response = await client.post("/classify", json={"text": f"fault probe {i} {time.time()}"})
            slowest = max(slowest, time.perf_counter() - started)
            statuses[response.status_code] += 1
            if response.status_code != 200:
                message = response.json().get("error", "")[:90]

        await asyncio.gather(*(one(i) for i in range(requests)))
    return statuses, slowest, message


def errors_by_kind(url: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        match = re.match(r'labelwise_backend_errors_total\{.*kind="(\w+)".*\} (\S+)', line)
        if match:
            counts[match[1]] = counts.get(match[1], 0) + float(match[2])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=64, help="concurrent requests per fault")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-faults-"))
    os.environ.update(BENTOML_HOME=str(home / "bentoml"), LABELWISE_HOME=str(home / "labelwise"))
    fake = FakeOpenAIServer(answer=lambda prompt: "positive", contract=False).start()  # timed: unchecked
    port = fake.port
    artifact, _ = package(spec(fake.base_url))
    many = 10**6

    def storm_429() -> None:
        fake.fail_next(429, times=many, headers={"retry-after": "1"})

    def server_errors() -> None:
        fake.fail_next(500, times=many)

    def timeouts() -> None:
        fake.latency_s = TIMEOUT_S * 3

    def slow() -> None:
        fake.latency_s = TIMEOUT_S * 0.6

    def refused() -> None:
        fake.stop()

    def heal() -> None:
        fake.clear_failures()
        fake.latency_s = 0.0
        if not fake._server.started or fake._server.should_exit:
            fake.start_on(port)

    faults: list[tuple[str, Callable[[], None]]] = [
        ("429 storm", storm_429), ("HTTP 500", server_errors), ("timeouts (3 s > 1 s)", timeouts),
        ("slow (0.6 s)", slow), ("connection refused", refused),
    ]  # fmt: skip
    print(f"{'fault':<22} {'answers':<22} {'slowest':>8}  {'after heal':<12} message", flush=True)
    with ServeProcess(
        str(artifact.tag), db_url=f"sqlite:///{home / 'p.db'}", log=home / "serve.log", workers=2
    ) as server:
        asyncio.run(burst(server.url, 8))  # warm-up
        for name, fault in faults:
            before = errors_by_kind(server.url)
            fault()
            statuses, slowest, message = asyncio.run(burst(server.url, args.requests))
            heal()
            after, _, _ = asyncio.run(burst(server.url, args.requests))
            counted = {
                k: int(v - before.get(k, 0))
                for k, v in errors_by_kind(server.url).items()
                if v != before.get(k, 0)
            }
            answers = ", ".join(f"{n}x{code}" for code, n in sorted(statuses.items()))
            recovered = ", ".join(f"{n}x{code}" for code, n in sorted(after.items()))
            print(
                f"{name:<22} {answers:<22} {slowest:7.2f}s  {recovered:<12} {message}  counted {counted}",
                flush=True,
            )

    # The batch runner through a 500 storm that ends halfway: every row is kept, and a resume
    # scores exactly the rows that failed.
    data = home / "rows.csv"
    data.write_text("text\n" + "".join(f"review number {i}\n" for i in range(400)))
    out = home / "scored.csv"
    cli = [
        sys.executable,
        "-m",
        "labelwise.cli",
        "batch",
        "score",
        str(artifact.tag),
        str(data),
        "--out",
        str(out),
    ]
    fake.fail_next(500, times=300)
    first = subprocess.run(cli, capture_output=True, text=True)
    import pandas as pd

    scored = pd.read_csv(out)
    failed = int((scored["status"] == "error").sum())
    second = subprocess.run(cli, capture_output=True, text=True)  # the same command resumes
    rescored = pd.read_csv(out)
    ok = int((rescored["status"] == "ok").sum())
    kept = f"{len(scored)}/400 rows kept through a 500 storm"
    print(f"batch: {kept} ({failed} marked error, exit {first.returncode})")
    print(f"batch re-run resumes: {ok}/400 ok, exit {second.returncode}")
    fake.stop()


if __name__ == "__main__":
    main()
