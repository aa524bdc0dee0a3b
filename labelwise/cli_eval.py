"""``labelwise eval``: measure an artifact on labelled data, or compare two on the same items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table
from typer.core import TyperGroup

from ._console import JsonOption, console, print_json
from .evaluation import EvalCard, compare_predictions, evaluate, load_labelled, verdict
from .evaluation._calibration import fit_calibration
from .evaluation._evaluate import EVAL_CARD, LabelledData
from .evaluation._experiment import ExperimentSpec, log_to_mlflow, run_experiment, write_leaderboard
from .evaluation._finetune import export_finetune, gap_report
from .packaging import (
    BackendSpec,
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    FineTuned,
    LabelwiseError,
    attach,
    load_artifact,
    package,
)
from .packaging._head import FAMILIES

__all__ = [
    "attach_evaluation",
    "calibrate_command",
    "eval_app",
    "experiment_command",
    "finetune_app",
    "parse_embedder",
    "print_card",
    "run_eval",
    "train_embedding_command",
]


class _DefaultToRun(TyperGroup):
    """``labelwise eval TAG DATA`` runs ``eval run``; ``labelwise eval compare ...`` compares."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_DefaultToRun,
    help="Measure classifiers on labelled data, with confidence intervals.",
    no_args_is_help=True,
)

TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the text.")]
LabelCol = Annotated[str, typer.Option("--label-col", help="Column holding the true label.")]
Sample = Annotated[int | None, typer.Option("--sample", min=1, help="Evaluate a seeded sample of N rows.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sample and of the bootstrap.")]
Resamples = Annotated[int, typer.Option("--n-resamples", min=100, help="Bootstrap resamples.")]


def run_eval(
    tag: str, data: Path, *, text_col: str, label_col: str, sample: int | None, seed: int, n_resamples: int
) -> tuple[EvalCard, LabelledData, list[Any]]:
    classifier = Classifier.load(tag, max_concurrency=16)
    labelled = load_labelled(
        data,
        text_col=text_col,
        label_col=label_col,
        label_set=classifier.artifact_.spec.task.labels,
        sample=sample,
        seed=seed,
    )
    with console.status(f"scoring {labelled.dataset.evaluated} rows with {classifier.tag_}"):
        card, predictions = evaluate(classifier, labelled, n_resamples=n_resamples, random_state=seed)
    return card, labelled, predictions


def attach_evaluation(
    tag: str, card: EvalCard, texts: list[str], predictions: list[Any], *, source: str, seed: int
) -> ClassifierArtifact:
    """Store the eval card and the drift reference profile with the artifact."""
    from .batch._drift_report import REFERENCE_PROFILE, DriftData

    attach(tag, EVAL_CARD, card.model_dump_json(indent=2).encode())
    profile = DriftData.profile(texts, predictions, name=source, seed=seed)
    return attach(tag, REFERENCE_PROFILE, profile.to_json())


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


@eval_app.command("run")
def eval_run(
    tag: Annotated[str, typer.Argument(help="Artifact tag.")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    n_resamples: Resamples = 1000,
    out: Annotated[Path | None, typer.Option("--out", help="Write the eval card as JSON here.")] = None,
    attach_card: Annotated[
        bool, typer.Option("--attach", help="Attach the card and a drift reference profile.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Score TAG on DATA and print its metrics with bootstrap intervals."""
    card, labelled, predictions = run_eval(
        tag, data, text_col=text_col, label_col=label_col, sample=sample, seed=seed, n_resamples=n_resamples
    )
    if out is not None:
        out.write_text(card.model_dump_json(indent=2))
    if attach_card:
        attach_evaluation(
            str(card.artifact_tag), card, labelled.texts, predictions, source=data.name, seed=seed
        )
    if as_json:
        print_json(card.model_dump(mode="json"))
    else:
        print_card(card)


@eval_app.command("compare")
def eval_compare(
    tag_a: Annotated[str, typer.Argument(help="Artifact A (e.g. the one in production).")],
    tag_b: Annotated[str, typer.Argument(help="Artifact B (the candidate).")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    n_resamples: Resamples = 1000,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    as_json: JsonOption = False,
) -> None:
    """Score A and B on the same items; say which is better on which metric, and if significantly."""
    a, b = load_artifact(tag_a), load_artifact(tag_b)
    if a.spec.task.labels != b.spec.task.labels:
        raise LabelwiseError(f"{a.tag} and {b.tag} have different label sets; they cannot be compared")
    options = {"text_col": text_col, "label_col": label_col, "sample": sample, "seed": seed}
    card_a, labelled, preds_a = run_eval(str(a.tag), data, n_resamples=n_resamples, **options)  # type: ignore[arg-type]
    card_b, _, preds_b = run_eval(str(b.tag), data, n_resamples=n_resamples, **options)  # type: ignore[arg-type]
    tests = compare_predictions(
        labelled.labels,
        [p.label for p in preds_a],
        [p.label for p in preds_b],
        labels=a.spec.task.labels,
        ordinal=a.spec.task.ordinal,
        n_resamples=n_resamples,
        random_state=seed,
    )
    rows = [
        {
            "metric": t.metric,
            "a": t.value_a,
            "b": t.value_b,
            "difference": t.difference,
            "low": t.low,
            "high": t.high,
            "test": t.test,
            "p_value": t.p_value,
            "better": verdict(t, alpha=alpha),
        }
        for t in tests
    ]
    if as_json:
        print_json({"a": str(a.tag), "b": str(b.tag), "dataset": card_a.dataset.model_dump(), "tests": rows})
        return
    console.print(
        f"A = [bold]{a.tag}[/bold], B = [bold]{b.tag}[/bold], {card_a.dataset.evaluated} items of {data.name}"
    )
    table = Table("metric", "A", "B", "B - A [95% interval]", "test", "p-value", "better")
    for row in rows:
        better = {"A": "A", "B": "B", "tie": "no significant difference"}[str(row["better"])]
        table.add_row(
            str(row["metric"]),
            f"{row['a']:.3f}",
            f"{row['b']:.3f}",
            f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]",
            str(row["test"]),
            f"{row['p_value']:.3g}",
            better,
        )
    console.print(table)


def calibrate_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag (scoring: logprobs).")],
    data: Annotated[Path, typer.Argument(help="Labelled data held out from any training.")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    method: Annotated[str, typer.Option(help="temperature or isotonic.")] = "temperature",
    abstain_below: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Give no label below this confidence.")
    ] = None,
    held_out: Annotated[
        float, typer.Option(min=0.1, max=0.9, help="Share kept to measure the result.")
    ] = 0.5,
    sample: Sample = None,
    seed: Seed = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report as JSON here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fit calibration on part of DATA, report ECE before and after on the rest, package the result."""
    if method not in ("temperature", "isotonic"):
        raise LabelwiseError(f"--method must be temperature or isotonic, not {method!r}")
    artifact = load_artifact(tag)
    labelled = load_labelled(
        data,
        text_col=text_col,
        label_col=label_col,
        label_set=artifact.spec.task.labels,
        sample=sample,
        seed=seed,
    )
    with console.status(f"scoring {labelled.dataset.evaluated} rows with {artifact.tag}"):
        spec, report = fit_calibration(
            artifact,
            labelled,
            method=method,  # type: ignore[arg-type]
            held_out=held_out,
            abstain_below=abstain_below,
            random_state=seed,
        )
    calibrated, _ = package(spec)
    if out is not None:
        out.write_text(report.model_dump_json(indent=2))
    if as_json:
        print_json({"calibrated_tag": str(calibrated.tag), **report.model_dump(mode="json")})
        return
    console.print(
        f"[bold]{calibrated.tag}[/bold]: {artifact.tag} with {method} calibration, fitted on "
        f"{report.fit_rows} rows, measured on {report.held_out_rows} held-out rows"
    )
    table = Table("metric (held out)", "before", "after")
    for name in report.before:
        table.add_row(name, f"{report.before[name]:.4f}", f"{report.after[name]:.4f}")
    console.print(table)
    curve = Table("abstain below", "coverage", "accuracy")
    for point in report.coverage_curve[::2]:
        accuracy = "-" if point.accuracy is None else f"{point.accuracy:.3f}"
        curve.add_row(f"{point.threshold:.2f}", f"{point.coverage:.3f}", accuracy)
    console.print(curve)


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
    as_json: JsonOption = False,
) -> None:
    """Replay the validation file and a test set through TAG; explain reported vs measured metrics."""
    classifier = Classifier.load(tag, max_concurrency=16)
    spec = classifier.artifact_.spec
    if reported is not None:
        try:
            reported_metrics = {str(k): float(v) for k, v in json.loads(reported.read_text()).items()}
        except (OSError, ValueError, AttributeError) as exc:
            raise LabelwiseError(
                f"--reported {reported}: expected a JSON object of metric values ({exc})"
            ) from None
    elif isinstance(spec.technique, FineTuned):
        reported_metrics = dict(spec.technique.provenance.reported_metrics)
    else:
        raise LabelwiseError(
            "give --reported FILE: the artifact is not fine_tuned, so it records no reported metrics"
        )
    test_data = None
    if test is not None:
        test_data = load_labelled(
            test, text_col=text_col, label_col=label_col, label_set=spec.task.labels, sample=sample, seed=seed
        )
    with console.status("replaying the validation file and the test set"):
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


def experiment_command(
    grid: Annotated[Path, typer.Argument(help="Experiment file (YAML): base spec, data, grid.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the leaderboard (default: beside GRID).")
    ] = None,
    package_best: Annotated[bool, typer.Option("--package-best", help="Package the best candidate.")] = False,
    mlflow_uri: Annotated[
        str | None,
        typer.Option("--mlflow", help="Also log to MLflow at this tracking URI (e.g. sqlite:///mlflow.db)."),
    ] = None,
) -> None:
    """Run a prompt experiment and write a leaderboard (CSV, JSON, HTML with plots)."""
    experiment, root = ExperimentSpec.from_yaml(grid)
    out = out or grid.parent / f"{experiment.name}-results"

    def progress(i: int, total: int, candidate: Any) -> None:
        console.print(f"[{i + 1}/{total}] {candidate.name} ({candidate.tag})", highlight=False)

    board = run_experiment(experiment, root, on_candidate=progress)
    files = write_leaderboard(board, out)
    table = Table("rank", "candidate", "weighted F1 [95%]", "accuracy", "coverage")
    for rank, row in enumerate(board.rows, start=1):
        f1 = row.card.metrics["weighted_f1"]
        table.add_row(
            str(rank),
            row.candidate.name,
            f"{f1.value:.3f} [{f1.low:.3f}, {f1.high:.3f}]",
            f"{row.card.metrics['accuracy'].value:.3f}",
            f"{row.card.metrics['coverage'].value:.3f}",
        )
    baseline = board.baseline
    table.add_row(
        "-", "most frequent label", f"{baseline['weighted_f1']:.3f}", f"{baseline['accuracy']:.3f}", "1.000"
    )
    console.print(table)
    console.print("wrote " + ", ".join(str(f) for f in files))
    if mlflow_uri:
        experiment_id = log_to_mlflow(board, mlflow_uri, artifact_dir=out / "mlartifacts")
        console.print(f"logged to MLflow experiment {experiment_id} at {mlflow_uri}")
    if package_best:
        best = board.best()
        artifact, _ = package(best.spec)
        attach(artifact.tag, EVAL_CARD, best.card.model_dump_json(indent=2).encode())
        console.print(f"packaged the best candidate as [bold]{artifact.tag}[/bold]")


def parse_embedder(value: str, *, base_url: str | None = None, api_key_env: str | None = None) -> BackendSpec:
    """``--embedder PROVIDER:MODEL`` as a backend spec."""
    provider, _, model = value.partition(":")
    if not model:
        raise LabelwiseError("--embedder must be PROVIDER:MODEL, e.g. sentence_transformers:all-MiniLM-L6-v2")
    try:
        return BackendSpec.model_validate(
            {"provider": provider, "model": model, "base_url": base_url, "api_key_env": api_key_env}
        )
    except ValidationError as exc:
        raise LabelwiseError(f"--embedder: {exc.errors()[0]['msg']}") from None


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
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    test_size: Annotated[float, typer.Option(min=0.05, max=0.5, help="Held-out share.")] = 0.2,
    sample: Sample = None,
    seed: Seed = 0,
    families: Annotated[str, typer.Option(help="Head families to search, comma-separated.")] = ",".join(
        FAMILIES
    ),
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds of the head search.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Embed labelled texts, choose a scikit-learn head by cross-validation, package and evaluate it."""
    from .evaluation._train_embedding import train_embedding

    spec = parse_embedder(embedder, base_url=base_url, api_key_env=api_key_env)
    with console.status(f"embedding and training on {data.name}"):
        artifact, card, predictions, test, report = train_embedding(
            data, name=name, embedder=spec, text_col=text_col, label_col=label_col, test_size=test_size,
            seed=seed, sample=sample, families=tuple(f.strip() for f in families.split(",")), folds=folds,
        )  # fmt: skip
    attach_evaluation(str(artifact.tag), card, test.texts, predictions, source=data.name, seed=seed)
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
    console.print(
        f"prediction: {report.prediction_texts_per_s:.1f} texts/s ({report.test_rows} held-out texts)"
    )
