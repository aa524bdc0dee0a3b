"""``labelwise train-embedding``: an embedding classifier from labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    JsonOption,
    LabelCol,
    Seed,
    TextCol,
    console,
    parse_embedder,
    print_card,
    print_json,
)
from ._progress import ProgressBar, step


def train_embedding_command(
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    name: Annotated[str, typer.Option("--name", help="Name of the classifier artifact.")],
    embedder: Annotated[
        str,
        typer.Option(
            help="PROVIDER:MODEL: sentence_transformers:all-MiniLM-L6-v2, openai:text-embedding-3-small, ..."
        ),
    ] = "sentence_transformers:all-MiniLM-L6-v2",
    base_url: Annotated[str | None, typer.Option(help="openai_compatible / azure_openai endpoint.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="NAME of the variable holding the API key.")] = None,
    runtime: Annotated[
        str | None,
        typer.Option(help="sentence_transformers: torch (default) or onnx_int8 (about 2x faster on a CPU)."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(min=8, help="sentence_transformers: truncate texts to this many tokens (faster)."),
    ] = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    test_size: Annotated[float, typer.Option(min=0.05, max=0.5, help="Held-out share.")] = 0.2,
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="Use a seeded sample of N rows, before the split.")
    ] = None,
    seed: Seed = 0,
    families: Annotated[
        str | None,
        typer.Option(
            help="Head families to search, comma-separated: logistic_regression, linear_svm, "
            "gradient_boosting (default: the two linear ones, which train in seconds)."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds of the head search.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Embed labelled texts, choose a scikit-learn head by cross-validation, package and evaluate it."""
    from ..training import DEFAULT_FAMILIES, train_embedding

    spec = parse_embedder(
        embedder, base_url=base_url, api_key_env=api_key_env, runtime=runtime, max_tokens=max_tokens
    )
    chosen = tuple(f.strip() for f in families.split(",")) if families else DEFAULT_FAMILIES
    bar: ProgressBar | None = None  # made when embedding starts, once its total is known

    def embedded(count: int, total: int, *, cached: bool = False) -> None:
        nonlocal bar
        bar = bar or ProgressBar("embedding", total, unit="texts").start()
        bar.advance(count, cached=cached)

    def on_step(message: str) -> None:
        if bar is not None:  # a stage after embedding
            bar.stop()
        step(message)

    try:
        result = train_embedding(
            data, name=name, embedder=spec, text_col=text_col, label_col=label_col, test_size=test_size,
            seed=seed, sample=sample, families=chosen, folds=folds,
            on_step=on_step, on_embedded=embedded,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.stop()
    artifact, card, report = result.artifact, result.card, result.report
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    console.print(
        f"[bold]{artifact.tag}[/bold]: {report.head_family} {report.head_params} "
        f"(cross-validated weighted F1 {report.cv_weighted_f1:.3f} on {report.train_rows} rows)"
    )
    print_card(card)
    baseline = report.tfidf_baseline
    console.print(
        f"TF-IDF + logistic regression on the same split: accuracy {baseline['accuracy']:.3f}, "
        f"weighted F1 {baseline['weighted_f1']:.3f}"
    )
    if report.embedded_texts:
        console.print(
            f"embedding: {report.embedding_texts_per_s:.1f} texts/s ({report.embedded_texts} new texts)"
        )
    cached = report.test_rows - report.prediction_embedded
    rate = report.prediction_texts_per_s
    speed = f"{rate:.1f} texts/s" if rate is not None else "speed not measured"
    console.print(
        f"prediction: {speed} ({report.prediction_embedded} held-out texts embedded, {cached} from the cache)"
    )
