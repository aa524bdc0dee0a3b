"""``labelwise predict``: classify texts from the command line or a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..core import LabelwiseError, read_table
from ._common import (
    JsonOption,
    console,
    print_json,
)

if TYPE_CHECKING:
    from ..packaging import Prediction


def _read_texts(path: Path, text_col: str) -> list[str]:
    frame = read_table(path, required={text_col: "--text-col"})
    texts: list[str] = frame[text_col].fillna("").astype(str).tolist()
    return texts


def _prediction_row(text: str, prediction: Prediction) -> dict[str, Any]:
    return {"text": text, **prediction.model_dump()}


def predict_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag, e.g. yelp-few-shot:latest.")],
    text: Annotated[str | None, typer.Argument(help="The text to classify.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="CSV, JSONL or Parquet file.")] = None,
    text_col: Annotated[str, typer.Option("--text-col", help="Column holding the text.")] = "text",
    max_concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Classify one text, or every row of a file."""
    from ..packaging import ArtifactTag, ClassifierRuntime

    if (text is None) == (input_file is None):
        raise LabelwiseError("give either a TEXT argument or --input FILE (not both)")
    texts = [text] if text is not None else _read_texts(input_file, text_col)  # type: ignore[arg-type]
    classifier = ClassifierRuntime.load(ArtifactTag.from_str(tag), max_concurrency=max_concurrency)
    predictions = classifier.classify(texts)
    rows = [_prediction_row(t, p) for t, p in zip(texts, predictions, strict=True)]
    if as_json:
        print_json(rows[0] if text is not None else rows)
        return
    if text is not None:
        _print_single(predictions[0])
        return
    table = Table("#", "text", "label", "p(label)", "reason")
    for i, (t, p) in enumerate(zip(texts, predictions, strict=True)):
        confidence = f"{p.probabilities[p.label]:.3f}" if p.probabilities and p.label else ""
        preview = escape(t[:60].replace("\n", " "))
        table.add_row(str(i), preview, p.label or "-", confidence, escape(p.reason or ""))
    console.print(table)


def _print_single(prediction: Prediction) -> None:
    console.print(f"label: [bold]{prediction.label if prediction.label is not None else '-'}[/bold]")
    if prediction.reason:
        console.print(f"reason: {escape(prediction.reason)}")
    if prediction.probabilities:
        table = Table("label", "probability")
        for label, p in prediction.probabilities.items():
            table.add_row(label, f"{p:.3f}")
        console.print(table)
    console.print(
        f"raw output: {escape(repr(prediction.raw_output))}  tokens: {prediction.prompt_tokens}+"
        f"{prediction.completion_tokens}  latency: {prediction.latency_s:.2f} s  "
        f"artifact: {prediction.artifact_tag}"
    )
