"""Texts per second and weighted F1 of the embedding encoder, run three ways, on Yelp reviews.

Peer: sentence-transformers on torch, as ``backend.runtime`` left unset runs it. Against it, the
same model int8-quantized in ONNX Runtime (``runtime: onnx_int8``), at the model's 256 tokens and
truncated to 128 (``max_tokens: 128``), and torch truncated to 128. Each encodes the same reviews
with no cache (timed after the model is loaded, and after the one-time ONNX export). A logistic
regression predicts every review from the other folds' vectors (5-fold, the same folds for every
encoder), so the F1 figures say what an artifact built with that encoder would measure, and the
paired interval rests on every review: a 500-review test set once showed a 0.02 gap that
5,000 reviews did not confirm.

    .venv/bin/python bench/embedding_encoder.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LABELWISE_HOME", tempfile.mkdtemp(prefix="labelwise-bench-"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labelwise.backends import BackendSpec, Embedder
from labelwise.evaluation import paired_bootstrap  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "yelp-sample.csv"
ENCODERS: dict[str, dict[str, object]] = {
    "torch (peer)": {},
    "onnx_int8": {"runtime": "onnx_int8"},
    "onnx_int8, 128 tokens": {"runtime": "onnx_int8", "max_tokens": 128},
    "torch, 128 tokens": {"max_tokens": 128},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000, help="reviews from the sample (at most 5000)")
    args = parser.parse_args()
    rows = pd.read_csv(SAMPLE).sample(args.rows, random_state=0)
    texts, stars = rows["text"].tolist(), rows["stars"].to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    results, predictions = {}, {}
    for name, fields in ENCODERS.items():
        spec = BackendSpec.model_validate(
            {"provider": "sentence_transformers", "model": "all-MiniLM-L6-v2", **fields}
        )
        embedder = Embedder(spec)  # no cache: every text is encoded
        embedder.embed(texts[:8])  # load the model (and build the ONNX file once)
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        seconds = time.perf_counter() - started
        predicted = cross_val_predict(LogisticRegression(max_iter=2000), vectors, stars, cv=folds)
        f1 = f1_score(stars, predicted, average="weighted")
        results[name] = (len(texts) / seconds, f1)
        predictions[name] = predicted
        print(f"{name}: {len(texts) / seconds:.1f} texts/s, weighted F1 {f1:.3f}", flush=True)
    peer_speed, peer_f1 = results["torch (peer)"]
    print(f"\n{len(texts)} Yelp reviews, 5-fold cross-validated, {os.cpu_count()} cores")
    print("| encoder | texts/s | vs torch | weighted F1 | minus torch's [95 % paired bootstrap] |")
    print("|---|---|---|---|---|")
    truth = stars

    def f1_of(name: str) -> Callable[[np.ndarray], float]:
        return lambda i: float(f1_score(truth[i], predictions[name][i], average="weighted"))

    for name, (speed, f1) in results.items():
        gap = paired_bootstrap("weighted_f1", f1_of("torch (peer)"), f1_of(name), len(truth), random_state=0)
        interval = f"[{gap.low:+.3f}, {gap.high:+.3f}] " if name != "torch (peer)" else ""
        print(
            f"| {name} | {speed:.1f} | {speed / peer_speed:.2f}x | {f1:.3f} | {f1 - peer_f1:+.3f} {interval}|"
        )


if __name__ == "__main__":
    main()
