"""Seconds per prediction on the embedded local model, in each scoring mode.

Peer: the plain sequential ``openai`` loop a data scientist writes against the same llama.cpp
server with the same prompts and settings. The ratio is labelwise's time over the peer's, so
it shows labelwise's own overhead (parsing, retries, bookkeeping); the llama.cpp server handles
one request at a time, so concurrency cannot help here.

    .venv/bin/python bench/local_scoring_modes.py [--rows 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="labelwise-bench-"))

import openai  # noqa: E402
import pandas as pd  # noqa: E402

from labelwise.backends._local import LocalServerConfig, local_server
from labelwise.backends._openai import label_grammar
from labelwise.packaging import Classifier, ClassifierSpec, package  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
YELP = REPO / "data" / "yelp-sample.csv"


def spec_for(mode: str) -> ClassifierSpec:
    data = ClassifierSpec.from_yaml(REPO / "examples" / "yelp-few-shot.yaml").model_dump(mode="json")
    data.update(name=f"bench-{mode.replace('_', '-')}", scoring=mode)
    if mode == "json_schema":
        data["decoding"] = {"temperature": 0, "seed": 0}
    return ClassifierSpec.from_dict(data)


def direct_loop(classifier: Classifier, texts: list[str]) -> float:
    """What a data scientist writes: one openai call after another, same prompt and settings."""
    server = local_server(LocalServerConfig(logits_all=classifier.artifact.spec.scoring == "logprobs"))
    client = openai.OpenAI(api_key="unused", base_url=server.base_url)
    started = time.perf_counter()
    for text in texts:
        request = classifier.scorer_.request(text)
        kwargs: dict[str, object] = {"max_tokens": request.max_tokens, "temperature": 0, "seed": 0}
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.top_logprobs:
            kwargs["logprobs"] = request.top_logprobs
            kwargs["logit_bias"] = {str(k): v for k, v in (request.logit_bias or {}).items()}
        if request.label_enum:
            kwargs["extra_body"] = {"grammar": label_grammar(request.label_enum)}
        client.completions.create(model=classifier.backend_.model, prompt=request.prompt, **kwargs)
    return (time.perf_counter() - started) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    frame = pd.read_csv(YELP)
    frame = frame[frame["text"].str.len() <= 600].sample(n=args.rows, random_state=11)
    texts = frame["text"].tolist()
    print(f"{args.rows} Yelp reviews (<= 600 chars), few-shot prompt with 5 examples, local Gemma 3 270M")
    print(f"{'mode':<12} {'labelwise s/pred':>17} {'direct s/pred':>14} {'ratio':>6}")
    for mode in ("generate", "logprobs", "json_schema"):
        artifact, _ = package(spec_for(mode))
        classifier = Classifier(artifact=artifact, max_concurrency=1)
        classifier.classify(texts[:2])  # start the server and warm the prompt cache
        direct = direct_loop(classifier, texts)
        started = time.perf_counter()
        classifier.classify(texts)
        ours = (time.perf_counter() - started) / len(texts)
        print(f"{mode:<12} {ours:>17.3f} {direct:>14.3f} {ours / direct:>6.2f}")


if __name__ == "__main__":
    main()
