"""What the command modules share: output, common options, evaluation and parsing helpers."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..core import LabelwiseError
from ._progress import ProgressBar, err_console, step

if TYPE_CHECKING:
    from ..backends import BackendSpec
    from ..evaluation import EvalCard, Evaluation

__all__ = [
    "Concurrency",
    "JsonOption",
    "LabelCol",
    "Resamples",
    "Sample",
    "Seed",
    "TextCol",
    "console",
    "parse_embedder",
    "parse_since",
    "print_card",
    "print_json",
    "run_eval",
]

console = Console(soft_wrap=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def parse_since(value: str | None, *, option: str = "--since") -> datetime | None:
    """An ISO date or time from the command line; naive times are taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LabelwiseError(f"{option} {value!r} is not an ISO date or time (e.g. 2026-11-01)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the text.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Column holding the true label.")]
Sample = Annotated[int | None, typer.Option("--sample", min=1, help="Evaluate a seeded sample of N rows.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sample and of the bootstrap.")]
Resamples = Annotated[int, typer.Option("--n-resamples", min=100, help="Bootstrap resamples.")]
Concurrency = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=1,
        help="Requests in flight at once; never more than the backend serves (1 for the embedded model).",
    ),
]


def run_eval(
    tag: str,
    data: Path,
    *,
    text_col: str,
    label_col: str,
    sample: int | None,
    seed: int,
    n_resamples: int,
    concurrency: int = 16,
) -> Evaluation:
    """``evaluate_file`` with a progress bar on stderr."""
    from ..evaluation import evaluate_file

    bar: ProgressBar | None = None

    def started(message: str, rows: int) -> None:
        nonlocal bar
        step(message)
        bar = ProgressBar("scoring", rows).start()

    try:
        return evaluate_file(
            tag, data, text_col=text_col, label_col=label_col, sample=sample, seed=seed,
            n_resamples=n_resamples, concurrency=concurrency, on_start=started,
            on_progress=lambda n: bar.advance(n) if bar is not None else None,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.stop()


def print_card(card: EvalCard) -> None:
    dataset = card.dataset
    sampled = f", sample {dataset.sample} seed {dataset.seed}" if dataset.sample else ""
    console.print(
        f"[bold]{card.artifact_tag}[/bold] on {dataset.name} ({dataset.evaluated} of {dataset.rows} rows"
        f"{sampled}; sha256 {dataset.sha256[:12]})"
    )
    level = f"{card.confidence:.0%}"
    table = Table("metric", "value", f"{level} interval", "most-frequent baseline")
    for name, estimate in card.metrics.items():
        baseline = card.baseline.get(name)
        table.add_row(
            name,
            f"{estimate.value:.3f}",
            f"[{estimate.low:.3f}, {estimate.high:.3f}]",
            "" if baseline is None else f"{baseline:.3f}",
        )
    console.print(table)
    for warning in card.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def parse_embedder(value: str, **fields: object) -> BackendSpec:
    """``--embedder PROVIDER:MODEL`` as a backend spec, with other ``fields`` of it (``None``: unset)."""
    from pydantic import ValidationError

    from ..backends import BackendSpec

    provider, _, model = value.partition(":")
    if not model:
        raise LabelwiseError("--embedder must be PROVIDER:MODEL, e.g. sentence_transformers:all-MiniLM-L6-v2")
    try:
        return BackendSpec.model_validate(
            {"provider": provider, "model": model, **{k: v for k, v in fields.items() if v is not None}}
        )
    except ValidationError as exc:
        raise LabelwiseError(f"--embedder: {exc.errors()[0]['msg']}") from None
