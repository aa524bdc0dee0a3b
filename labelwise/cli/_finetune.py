"""``labelwise finetune``: training files for a provider's fine-tuning, and the reported-vs-measured gap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..core import LabelwiseError
from ._common import (
    Concurrency,
    JsonOption,
    LabelCol,
    Sample,
    Seed,
    TextCol,
    console,
    print_json,
)
from ._progress import err_console

finetune_app = typer.Typer(
    help="Fine-tuning data, and reported-versus-measured metric gaps.", no_args_is_help=True
)


@finetune_app.command("export")
def finetune_export(
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    spec: Annotated[
        Path, typer.Option("--spec", help="The spec whose prompt the examples are rendered with.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSONL files and export.json.")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    model: Annotated[str, typer.Option(help="Base model, for token counts.")] = "gpt-4o-mini-2024-07-18",
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    price: Annotated[float, typer.Option(help="USD per million training tokens.")] = 3.0,
    sample: Sample = None,
    seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """Write train/validation JSONL (chat and prompt/completion) with a representative validation split."""
    from ..evaluation import export_finetune, load_labelled
    from ..packaging import ClassifierSpec

    classifier_spec = ClassifierSpec.from_yaml(spec)
    labelled = load_labelled(
        data,
        text_col=text_col,
        label_col=label_col,
        label_set=classifier_spec.task.labels,
        sample=sample,
        seed=seed,
    )
    report = export_finetune(
        labelled,
        classifier_spec,
        out,
        model=model,
        epochs=epochs,
        usd_per_million_training_tokens=price,
        seed=seed,
    )
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    table = Table("split", "rows", "tokens", "labels")
    for name, split in (("train", report.train), ("validation", report.validation)):
        labels = ", ".join(f"{k}: {v}" for k, v in split.labels.items())
        table.add_row(name, str(split.rows), str(split.tokens), labels)
    console.print(table)
    console.print(f"validation size: {report.validation_rule}")
    console.print(
        f"training: {report.training_tokens} tokens over {report.epochs} epochs, "
        f"about ${report.estimated_cost_usd:.2f}; files in {out}"
    )


@finetune_app.command("gap")
def finetune_gap(
    tag: Annotated[str, typer.Argument(help="The deployed fine-tuned artifact.")],
    validation: Annotated[
        Path, typer.Option("--validation", help="The chat JSONL validation file used in training.")
    ],
    reported: Annotated[
        Path | None,
        typer.Option("--reported", help="JSON of the metrics the service reported (default: provenance)."),
    ] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Labelled test data.")] = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report as JSON here.")] = None,
    concurrency: Concurrency = 16,
    as_json: JsonOption = False,
) -> None:
    """Replay the validation file and a test set through TAG; explain reported vs measured metrics."""
    from ..evaluation import gap_report, load_labelled
    from ..packaging import Classifier

    classifier = Classifier.load(tag, max_concurrency=concurrency)
    spec = classifier.artifact_.spec
    if reported is not None:
        try:
            reported_metrics = {str(k): float(v) for k, v in json.loads(reported.read_text()).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise LabelwiseError(
                f"--reported {reported}: expected a JSON object of metric values ({exc})"
            ) from None
    elif spec.technique.reported_metrics:
        reported_metrics = spec.technique.reported_metrics
    else:
        raise LabelwiseError(
            "give --reported FILE: the artifact records no reported metrics (a fine_tuned spec "
            "holds them in technique.provenance.reported_metrics)"
        )
    test_data = None
    if test is not None:
        test_data = load_labelled(
            test, text_col=text_col, label_col=label_col, label_set=spec.task.labels, sample=sample, seed=seed
        )
    with err_console.status("replaying the validation file and the test set"):
        report = gap_report(classifier, validation, reported=reported_metrics, test=test_data)
    if out is not None:
        out.write_text(report.model_dump_json(indent=2))
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    table = Table("metric", "reported", "validation, as trained", "validation, as served", "test")
    metrics = sorted(set(reported_metrics) | set(report.validation_as_served.metrics))
    for metric in metrics:

        def cell(measured: Any, metric: str = metric) -> str:
            if measured is None or metric not in measured.metrics:
                return "-"
            m = measured.metrics[metric]
            return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"

        value = reported_metrics.get(metric)
        table.add_row(
            metric,
            "-" if value is None else f"{value:.3f}",
            cell(report.validation_as_trained),
            cell(report.validation_as_served),
            cell(report.test),
        )
    console.print(table)
    for finding in report.findings:
        console.print(f"- {finding}")
