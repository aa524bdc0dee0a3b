"""The local fine-tune against frozen embeddings and TF-IDF, and its loop against plain PyTorch.

Yelp-5 on the bundled 5,000-row sample, seeded and stratified: 1,000 rows held out (the same for
every run), and of the other 4,000 a validation split (800, the fine-tuning data rules) and the
training rows. At each size N (500, 2,000, 4,000 labelled rows), the default local recipe
(``finetune start --local``) trains on N minus its validation rows and stops on them; the frozen
all-MiniLM-L6-v2 embeddings + logistic regression and TF-IDF + logistic regression get all N
rows (the same labelled budget; they need no validation split). Every classifier is measured on
the same 1,000 rows: accuracy, weighted F1 and MAE with paired 95% intervals (bootstrap; McNemar
for accuracy) against each baseline.

The few-labels mode (contrastive pairs, then a logistic-regression head) against the default
end-to-end recipe at small budgets (``--few-labels-sizes``), on the same test rows.

Throughput: the same number of training steps (batch 16, the recipe's tokens) in labelwise's
loop (its steps' own time) and in a plain PyTorch + transformers loop (bench/_torch_loop.py).

    .venv/bin/python bench/local_finetune.py [--sizes 500 2000 4000] [--steps 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LABELWISE_HOME", tempfile.mkdtemp(prefix="labelwise-bench-"))
os.environ.setdefault("BENTOML_HOME", os.path.join(os.environ["LABELWISE_HOME"], "bentoml"))

from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _torch_loop import plain_loop  # noqa: E402

from labelwise.backends import BackendSpec, Embedder  # noqa: E402
from labelwise.evaluation import compare_predictions  # noqa: E402
from labelwise.training import (  # noqa: E402
    LocalRecipe,
    base_model_files,
    finetune_local,
    split_for_training,
    train_encoder,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "yelp-sample.csv"
SEED = 0


def _baselines(
    train_texts: list[str], train_labels: list[str], test_texts: list[str]
) -> dict[str, list[str]]:
    embedder = Embedder.with_default_cache(
        BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    )
    head = LogisticRegression(max_iter=2000, C=1.0, random_state=SEED)
    head.fit(embedder.embed(train_texts), train_labels)
    frozen = [str(x) for x in head.predict(embedder.embed(test_texts))]
    tfidf = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)),
        LogisticRegression(max_iter=2000, random_state=SEED),
    )
    tfidf.fit(train_texts, train_labels)
    return {"frozen embeddings": frozen, "tf-idf": [str(x) for x in tfidf.predict(test_texts)]}


def _size(size: int, recipe: LocalRecipe, work: Path) -> dict[str, object]:
    started = time.perf_counter()
    result = finetune_local(
        SAMPLE,
        name=f"bench-ft-{size}-{recipe.mode.replace('_', '-')}",
        out=work / f"ft-{size}-{recipe.mode}",
        recipe=recipe,
        label_col="stars",
        seed=SEED,
        labelled_rows=size,
        device="auto",
    )
    wall = time.perf_counter() - started
    report = result.report
    splits = split_for_training(
        SAMPLE, text_col="text", label_col="stars", test_share=0.2, seed=SEED, labelled_rows=size
    )
    budget_texts = splits.train.texts + splits.validation.texts
    budget_labels = splits.train.labels + splits.validation.labels
    predictions = {"local fine-tune": [p.label for p in result.predictions]}
    predictions |= _baselines(budget_texts, budget_labels, result.test.texts)
    truth = result.test.labels
    labels = splits.labels
    row: dict[str, object] = {
        "size": size,
        "mode": recipe.mode,
        "train_rows": report.train_rows,
        "validation_rows": report.validation_rows,
        "test_rows": report.test_rows,
        "wall_s": round(wall, 1),
        "training_s": report.training_seconds,
        "examples_per_s": report.examples_per_s,
        "steps": report.steps,
        "best_step": report.best_step,
        "stopped_early": report.stopped_early,
    }
    for baseline in ("frozen embeddings", "tf-idf"):
        tests = compare_predictions(
            truth,
            predictions[baseline],
            predictions["local fine-tune"],
            labels=labels,
            ordinal=True,
            random_state=SEED,
        )
        for test in tests:
            if test.metric in ("accuracy", "weighted_f1", "mae"):
                row[f"{test.metric} vs {baseline}"] = {
                    "baseline": round(test.value_a, 4),
                    "fine-tune": round(test.value_b, 4),
                    "difference": round(test.difference, 4),
                    "interval": [round(test.low, 4), round(test.high, 4)],
                    "p": round(test.p_value, 4),
                }
    return row


def _throughput(recipe: LocalRecipe, steps: int, work: Path) -> dict[str, float]:
    splits = split_for_training(
        SAMPLE,
        text_col="text",
        label_col="stars",
        test_share=0.2,
        seed=SEED,
        labelled_rows=2 * steps * recipe.batch_size,
    )
    one_pass = recipe.model_copy(update={"epochs": 1, "evaluations_per_epoch": 1})
    trained = train_encoder(splits, one_pass, seed=SEED, device="cpu", checkpoints=work / "throughput")
    location, _ = base_model_files(recipe.base_model)
    index = {label: i for i, label in enumerate(splits.labels)}
    peer = plain_loop(
        str(location),
        splits.train.texts,
        [index[x] for x in splits.train.labels],
        n_labels=len(splits.labels),
        steps=trained.steps,
        batch_size=recipe.batch_size,
        max_tokens=recipe.max_tokens,
    )
    return {
        "steps": trained.steps,
        "labelwise_s": round(trained.train_seconds, 2),
        "plain_pytorch_s": round(peer, 2),
        "ratio": round(trained.train_seconds / peer, 3),
        "labelwise_examples_per_s": round(trained.examples_per_s, 2),
        "labelwise_with_evaluation_s": round(trained.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[500, 2000, 4000])
    parser.add_argument(
        "--few-labels-sizes",
        type=int,
        nargs="*",
        default=[80, 320, 500],
        help="Sizes where both modes are measured (half of a small budget goes to validation).",
    )
    parser.add_argument("--steps", type=int, default=30, help="Training steps timed against the plain loop.")
    parser.add_argument("--out", type=Path, default=None, help="Write the figures as JSON here.")
    args = parser.parse_args()
    recipe = LocalRecipe(mode="end_to_end")
    work = Path(tempfile.mkdtemp(prefix="labelwise-ft-bench-"))
    figures: dict[str, object] = {"recipe": recipe.model_dump(mode="json"), "cpus": os.cpu_count()}
    if args.steps:
        figures["throughput"] = _throughput(recipe, args.steps, work)
        print(json.dumps(figures["throughput"]), flush=True)
    figures["sizes"] = []
    # The few-labels mode: one pass over 10 pairs a text (SetFit trains one pass over its pairs).
    few = LocalRecipe(mode="few_labels")  # its own defaults: one pass over 10 pairs a text
    runs = [(size, recipe) for size in args.sizes]
    runs += [(size, mode) for size in args.few_labels_sizes for mode in (recipe, few)]
    for size, chosen in runs:
        row = _size(size, chosen, work)
        figures["sizes"].append(row)  # type: ignore[attr-defined]
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
