"""Rows per second of ``labelwise batch`` scoring, against peers measured in the same run.

1. A fake OpenAI-compatible backend (its own process) answering in 100 ms and refusing (429)
   more than CAP requests at once, on 2,000 Yelp reviews:
   (a) the plain sequential ``openai`` loop a data scientist writes (timed on a subset),
   (b) the backend's ceiling, CAP / latency,
   and labelwise's batch scorer with concurrency CAP.
2. The embedded llama.cpp model on a few reviews: labelwise's scorer against calling the same
   server directly, one request after another (it serves one request at a time).

    .venv/bin/python bench/batch_throughput.py [--rows 2000] [--cap 32] [--latency 0.1]
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

import openai  # noqa: E402
import pandas as pd  # noqa: E402

from labelwise.batch import ResultCache, score_dataframe  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
from labelwise.core import free_port
from labelwise.packaging import Classifier, ClassifierSpec, package  # noqa: E402
from labelwise.packaging._local import LocalServerConfig, local_server  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--local-rows", type=int, default=20)
    args = parser.parse_args()
    frame = pd.read_csv(YELP).sample(n=args.rows, random_state=0).reset_index(drop=True)

    process, base_url = fake_backend(args.latency, args.cap)
    try:
        spec = ClassifierSpec.from_dict(
            {
                "name": "bench-batch",
                "task": {"labels": ["1", "2", "3", "4", "5"]},
                "technique": {"kind": "zero_shot", "template": TEMPLATE, "max_text_chars": 600},
                "backend": {"provider": "openai_compatible", "model": "fake-model", "base_url": base_url},
                "decoding": {"max_tokens": 2},
            }
        )
        artifact, _ = package(spec)
        subset = frame["text"].head(max(20, int(2 / args.latency))).tolist()
        sequential = sequential_loop(base_url, subset)
        ceiling = args.cap / args.latency
        cache = ResultCache(Path(tempfile.mkdtemp()) / "cache.sqlite")  # empty: everything is scored
        classifier = Classifier(artifact=artifact, max_concurrency=args.cap)
        started = time.perf_counter()
        scored = score_dataframe(frame, classifier, cache=cache)
        ours = len(frame) / (time.perf_counter() - started)
        failed = int((scored["status"] == "error").sum())
        print(f"fake backend: {args.latency * 1000:.0f} ms latency, at most {args.cap} requests at once")
        print(f"  sequential openai loop ({len(subset)} rows): {sequential:8.1f} rows/s")
        print(f"  backend ceiling (cap / latency):     {ceiling:8.1f} rows/s")
        print(f"  labelwise batch ({len(frame)} rows):     {ours:8.1f} rows/s   failed rows: {failed}")
        print(f"  ratio to the sequential loop: {ours / sequential:.1f}x")
        print(f"  share of the ceiling: {ours / ceiling:.2f}")
    finally:
        process.terminate()
        process.wait()

    if args.local_rows:
        texts = frame["text"].head(args.local_rows).tolist()
        local_data = spec.model_dump(mode="json", exclude_none=True)
        local_data.update(
            name="bench-local", backend={"provider": "local"}, decoding={"max_tokens": 2, "stop": ["\n"]}
        )
        local = ClassifierSpec.from_dict(local_data)
        artifact, _ = package(local)
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
