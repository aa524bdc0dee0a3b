"""Throughput of a served embedding classifier (all-MiniLM-L6-v2 + logistic regression on Yelp).

Three ways to classify the same Yelp reviews, measured in this run:
(a) a bare Starlette app holding the same model and head, encoding each request's text on its
    own (what a team writes without batching), one process;
(b) ``labelwise serve`` with 2 workers: requests go to the embedding runner, whose adaptive
    batching merges concurrent texts into one forward pass;
(c) the ceiling: the same model encoding all the texts in one call, no HTTP.
Each server gets the same load (fixed concurrency) of texts it has never seen (an empty
embedding cache), after a warm-up on other texts.

    .venv/bin/python bench/serve_embedding.py [--requests 480] [--concurrency 32] [--train 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _load import free_port, measure, served_home, stop_all, wait_ready

REPO = Path(__file__).resolve().parent.parent
PEERS = str(REPO / "bench" / "_peers.py")
YELP = REPO / "data" / "yelp-sample.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--train", type=int, default=300, help="rows the head is fitted on")
    args = parser.parse_args()
    home = served_home()
    import pandas as pd

    from labelwise.backends import BackendSpec
    from labelwise.training._train_embedding import train_embedding

    frame = pd.read_csv(YELP).sample(frac=1.0, random_state=0)
    train = home / "train.csv"
    frame.iloc[: args.train].to_csv(train, index=False)
    warm = frame["text"].iloc[args.train : args.train + 96].tolist()
    texts = frame["text"].iloc[args.train + 96 : args.train + 96 + 2 * args.requests].tolist()
    bare_texts, our_texts = texts[: args.requests], texts[args.requests :]
    minilm = BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    artifact = train_embedding(
        train,
        name="bench-embed",
        embedder=minilm,
        label_col="stars",
        seed=0,
        families=("logistic_regression",),
    ).artifact
    tag = str(artifact.tag)

    from labelwise.packaging import Classifier

    classifier = Classifier.load(tag)
    classifier.embedder_.cache = None  # the ceiling pays for every text
    started = time.perf_counter()
    classifier.classify(our_texts)
    ceiling = len(our_texts) / (time.perf_counter() - started)
    print(f"{'ceiling':<12} {ceiling:7.1f} texts/s (one in-process call, batches of 64)", flush=True)

    bare_port, service_port = free_port(), free_port()
    processes = [subprocess.Popen([sys.executable, PEERS, "bare-embed", str(bare_port), tag])]
    cli = [sys.executable, "-m", "labelwise.cli"]
    processes.append(
        subprocess.Popen(
            [*cli, "serve", tag, "--port", str(service_port), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    )
    try:
        bare_url, our_url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{service_port}"
        wait_ready(f"{bare_url}/", processes[0])
        wait_ready(f"{our_url}/readyz", processes[1])
        print(f"{args.requests} Yelp reviews at concurrency {args.concurrency}", flush=True)
        for url in (bare_url, our_url):
            measure("(warm-up)", url, warm, concurrency=args.concurrency)
        bare = measure("bare app", bare_url, bare_texts, concurrency=args.concurrency)
        ours = measure("labelwise", our_url, our_texts, concurrency=args.concurrency)
        print(
            f"ratio labelwise/bare: throughput {ours['rps'] / bare['rps']:.2f}x, "
            f"p50 {ours['p50_ms'] / bare['p50_ms']:.2f}x, p99 {ours['p99_ms'] / bare['p99_ms']:.2f}x; "
            f"labelwise/ceiling throughput {ours['rps'] / ceiling:.2f}x"
        )
    finally:
        stop_all(processes)


if __name__ == "__main__":
    main()
