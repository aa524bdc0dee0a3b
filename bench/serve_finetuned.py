"""/classify of a locally fine-tuned classifier, int8 and float, against the frozen-embedding one.

Peer: the README's example classifier, frozen all-MiniLM-L6-v2 embeddings + logistic regression
(``train-embedding``), served by ``labelwise serve``. Against it, all-MiniLM-L6-v2 fine-tuned
here (``finetune start --local``, 128 tokens, head and tail), served from the float weights
(torch) and int8-quantized in ONNX Runtime (``--runtime onnx_int8``). Speed does not depend on
how long the model trained, so it trains briefly. Each server, alone on the machine, gets the
same load (fixed concurrency) of reviews it has never seen, after a warm-up on others.

    .venv/bin/python bench/serve_finetuned.py [--requests 480] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _load import free_port, measure, served_home, stop_all, wait_ready

REPO = Path(__file__).resolve().parent.parent
YELP = REPO / "data" / "yelp-sample.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=480)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    home = served_home()
    import pandas as pd

    from labelwise.backends import BackendSpec
    from labelwise.training import LocalRecipe, finetune_local, train_embedding

    frame = pd.read_csv(YELP).sample(frac=1.0, random_state=0)
    train = home / "train.csv"
    frame.iloc[:600].to_csv(train, index=False)
    minilm = BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    frozen = train_embedding(
        train, name="bench-frozen", embedder=minilm, label_col="stars", families=("logistic_regression",)
    ).artifact
    brief = LocalRecipe(mode="end_to_end", epochs=0.5, evaluations_per_epoch=1)
    tags = {"frozen embeddings (peer)": str(frozen.tag)}
    for runtime in ("torch", "onnx_int8"):
        result = finetune_local(
            train,
            name=f"bench-ft-{runtime.replace('_', '-')}",
            out=home / runtime,
            recipe=brief,
            label_col="stars",
            runtime=runtime,
        )  # type: ignore[arg-type]
        tags[f"fine-tuned, {runtime}"] = str(result.artifact.tag)
    rest = frame["text"].iloc[600:].tolist()
    warm, rest = rest[:96], rest[96:]
    print(f"{args.requests} Yelp reviews at concurrency {args.concurrency}", flush=True)
    figures = {}
    for number, (name, tag) in enumerate(tags.items()):
        texts = rest[number * args.requests : (number + 1) * args.requests]
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise.cli", "serve", tag, "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/readyz", process)
            measure("(warm-up)", url, warm, concurrency=args.concurrency)
            figures[name] = measure(name[:12], url, texts, concurrency=args.concurrency)
        finally:
            stop_all([process])
    peer = figures["frozen embeddings (peer)"]
    for name, result in figures.items():
        print(
            f"{name:<26} p50 {result['p50_ms']:7.1f} ms ({result['p50_ms'] / peer['p50_ms']:.2f}x)   "
            f"{result['rps']:6.1f} req/s ({result['rps'] / peer['rps']:.2f}x)"
        )


if __name__ == "__main__":
    main()
