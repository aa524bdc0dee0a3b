"""Rows per second of ``labelwise batch score``, against peers measured in the same run.

1. Start-up: ``labelwise --help``, and the time from launching ``labelwise batch score`` to its
   first request at the backend, beside the same figure for the peer loop below.
2. A fake OpenAI-compatible backend (its own process) refusing (429) more than CAP requests at
   once, at two latencies: 100 ms on 2,000 Yelp reviews (the client's CPU is the limit) and 1 s
   on 640 (latency is the limit). Each command runs as its own process and is timed from launch
   to exit, start-up included:
   (a) ``labelwise batch score --concurrency CAP --no-cache`` (its checkpoint starts empty),
   (b) the 15-line ``AsyncOpenAI`` + semaphore loop a skilled engineer writes (bench/_async_loop.py),
   (c) the backend's ceiling, CAP / latency; and, on a subset, the plain sequential ``openai`` loop.
3. The embedded llama.cpp model on a few reviews: labelwise's scorer against calling the same
   server directly, one request after another (it serves one request at a time).

    .venv/bin/python bench/batch_throughput.py [--rows 2000] [--slow-rows 640] [--cap 32]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="labelwise-bench-"))

from typing import Any  # noqa: E402

import httpx  # noqa: E402
import openai  # noqa: E402
import pandas as pd  # noqa: E402

from labelwise.batch import ResultCache, score_dataframe  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
from labelwise.backends._local import LocalServerConfig, local_server
from labelwise.core import free_port
from labelwise.packaging import Classifier, ClassifierSpec, package  # noqa: E402
from tests.serve_process import wait_ready  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
YELP = REPO / "data" / "yelp-sample.csv"
TEMPLATE = "Rate the following Yelp review with 1, 2, 3, 4 or 5 stars.\n\nReview: {text}\nStars: "


def fake_backend(latency: float, cap: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "_peers.py"), "backend", str(port), str(latency), str(cap)]
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"{base_url}/models", process, timeout_s=10)
    return process, base_url


def sequential_loop(base_url: str, texts: list[str]) -> float:
    """What a data scientist writes: one call after another. Returns rows per second."""
    client = openai.OpenAI(api_key="unused", base_url=base_url)
    started = time.perf_counter()
    for text in texts:
        client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": TEMPLATE.format(text=text[:600])}],
            max_tokens=2,
            temperature=0,
        )
    return len(texts) / (time.perf_counter() - started)


def _stats(base_url: str, *, reset: bool = False) -> dict[str, Any]:
    url = base_url.removesuffix("/v1") + "/stats"
    return (httpx.delete(url) if reset else httpx.get(url)).json()  # type: ignore[no-any-return]


def timed_process(command: list[str], base_url: str, env: dict[str, str]) -> tuple[float, float, int]:
    """Seconds from launch to exit and to the backend's first request; requests sent (429s too)."""
    _stats(base_url, reset=True)
    started = time.time()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.time() - started
    stats = _stats(base_url)
    return wall, stats["first_request_at"] - started, stats["requests"]


def compare_at(latency: float, cap: int, frame: pd.DataFrame, home: Path, repeats: int) -> None:
    process, base_url = fake_backend(latency, cap)
    try:
        env = {**os.environ, "LABELWISE_HOME": str(home / f"home-{latency}")}
        spec = home / f"spec-{latency}.yaml"
        spec.write_text(
            f"name: bench-batch\ntask: {{labels: ['1', '2', '3', '4', '5']}}\n"
            f"technique: {{kind: zero_shot, template: {TEMPLATE!r}, max_text_chars: 600}}\n"
            f"backend: {{provider: openai_compatible, model: fake-model, base_url: '{base_url}'}}\n"
            "decoding: {max_tokens: 2}\n"
        )
        cli = [sys.executable, "-m", "labelwise.cli"]
        subprocess.run([*cli, "package", str(spec)], env=env, check=True, capture_output=True)
        data = home / f"rows-{len(frame)}.csv"
        frame[["text"]].to_csv(data, index=False)
        ours_command = [*cli, "batch", "score", "bench-batch", str(data), "--out", str(home / "scored.csv"),
                        "--concurrency", str(cap), "--no-cache"]  # fmt: skip
        loop_command = [sys.executable, str(REPO / "bench" / "_async_loop.py"), str(data),
                        str(home / "loop.csv"), base_url, str(cap), TEMPLATE]  # fmt: skip
        # Interleaved, so that a slow spell of the machine falls on both; the median run counts.
        ours_runs, loop_runs = [], []
        for _ in range(repeats):
            ours_runs.append(timed_process(ours_command, base_url, env))
            loop_runs.append(timed_process(loop_command, base_url, env))
        ours, ours_first, ours_sent = sorted(ours_runs)[repeats // 2]
        loop, loop_first, loop_sent = sorted(loop_runs)[repeats // 2]
        ceiling = cap / latency
        subset = frame["text"].head(max(10, int(2 / latency))).tolist()
        sequential = sequential_loop(base_url, subset)
    finally:
        process.terminate()
        process.wait()
    rows = len(frame)
    print(
        f"fake backend: {latency * 1000:.0f} ms latency, at most {cap} requests at once, {rows} rows "
        f"(median of {repeats} interleaved runs)"
    )
    runs = (
        ("labelwise batch score", ours, ours_first, ours_sent),
        ("async loop (peer)", loop, loop_first, loop_sent),
    )
    for name, wall, first, sent in runs:
        print(
            f"  {name:22} {rows / wall:7.1f} rows/s  ({wall:.1f} s; first request at {first:.2f} s; "
            f"{sent} requests)"
        )
    print(f"  sequential loop ({len(subset)} rows): {sequential:7.1f} rows/s")
    print(f"  ceiling (cap / latency): {ceiling:7.1f} rows/s")
    print(f"  ratio to the async loop: {loop / ours:.2f}x; to the ceiling: {rows / ours / ceiling:.2f}x")


def startup(home: Path) -> None:
    env = {**os.environ, "LABELWISE_HOME": str(home / "home-startup")}
    timings = {}
    for name, command in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("labelwise --help", [sys.executable, "-m", "labelwise.cli", "--help"]),
        ("labelwise --version", [sys.executable, "-m", "labelwise.cli", "--version"]),
    ):
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            runs.append(time.perf_counter() - started)
        timings[name] = sorted(runs)[2]
    print("start-up (median of 5): " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--slow-rows", type=int, default=640)
    parser.add_argument("--cap", type=int, default=32)
    parser.add_argument("--local-rows", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the median counts")
    args = parser.parse_args()
    yelp = pd.read_csv(YELP)
    home = Path(tempfile.mkdtemp(prefix="labelwise-bench-"))
    startup(home)
    for latency, rows, seed in ((0.1, args.rows, 0), (1.0, args.slow_rows, 1)):
        frame = yelp.sample(n=rows, random_state=seed).reset_index(drop=True)
        compare_at(latency, args.cap, frame, home, args.repeats)
    spec = ClassifierSpec.from_dict(
        {
            "name": "bench-local",
            "task": {"labels": ["1", "2", "3", "4", "5"]},
            "technique": {"kind": "zero_shot", "template": TEMPLATE, "max_text_chars": 600},
            "backend": {"provider": "local"},
            "decoding": {"max_tokens": 2, "stop": ["\n"]},
        }
    )
    if args.local_rows:
        texts = yelp.sample(n=args.local_rows, random_state=2)["text"].tolist()
        artifact, _ = package(spec)
        classifier = Classifier(artifact=artifact, max_concurrency=4)
        classifier.classify(texts[:2])  # start the server, warm the model
        server = local_server(LocalServerConfig())
        client = openai.OpenAI(api_key="unused", base_url=server.base_url)
        started = time.perf_counter()
        for text in texts:
            client.completions.create(
                model="m", prompt=TEMPLATE.format(text=text[:600]), max_tokens=2, temperature=0, stop=["\n"]
            )
        direct = len(texts) / (time.perf_counter() - started)
        started = time.perf_counter()
        score_dataframe(
            pd.DataFrame({"text": texts}),
            classifier,
            cache=ResultCache(Path(tempfile.mkdtemp()) / "c.sqlite"),
        )
        ours = len(texts) / (time.perf_counter() - started)
        print(f"local llama.cpp model, {len(texts)} reviews: direct {direct:.2f} rows/s, ", end="")
        print(f"labelwise {ours:.2f} rows/s, ratio {ours / direct:.2f}")


if __name__ == "__main__":
    main()
