"""``labelwise eval``, ``calibrate`` and ``experiment``: measure and compare classifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from ..core import LabelwiseError
from ._common import (
    Concurrency,
    JsonOption,
    LabelCol,
    Resamples,
    Sample,
    Seed,
    TextCol,
    console,
    print_card,
    print_json,
    run_eval,
)
from ._progress import ProgressBar, err_console, step


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


@eval_app.command("run")
def eval_run(
    tag: Annotated[str, typer.Argument(help="Artifact tag.")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    n_resamples: Resamples = 1000,
    concurrency: Concurrency = 16,
    out: Annotated[Path | None, typer.Option("--out", help="Write the eval card as JSON here.")] = None,
    attach_card: Annotated[
        bool, typer.Option("--attach", help="Attach the card and a drift reference profile.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Score TAG on DATA and print its metrics with bootstrap intervals."""
    measured = run_eval(
        tag, data, text_col=text_col, label_col=label_col, sample=sample, seed=seed, n_resamples=n_resamples,
        concurrency=concurrency,
    )  # fmt: skip
    card = measured.card
    if out is not None:
        out.write_text(card.model_dump_json(indent=2))
    if attach_card:
        from ..evaluation import attach_evaluation

        attach_evaluation(
            str(card.artifact_tag), card, measured.data, measured.predictions, source=data.name, seed=seed
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
    concurrency: Concurrency = 16,
    as_json: JsonOption = False,
) -> None:
    """Score A and B on the same items; say which is better on which metric, and if significantly."""
    from ..evaluation import compare_predictions, comparison_records
    from ..packaging import load_artifact

    a, b = load_artifact(tag_a), load_artifact(tag_b)
    # The same labels in another order compare fine (train-embedding sorts them, a spec keeps the
    # author's order): metrics go by label, in A's order.
    if set(a.spec.task.labels) != set(b.spec.task.labels):
        only_a = sorted(set(a.spec.task.labels) - set(b.spec.task.labels))
        only_b = sorted(set(b.spec.task.labels) - set(a.spec.task.labels))
        raise LabelwiseError(
            f"{a.tag} and {b.tag} have different label sets (only in A: {only_a}; only in B: {only_b}); "
            "they cannot be compared"
        )
    if a.spec.task.ordinal and b.spec.task.ordinal and a.spec.task.labels != b.spec.task.labels:
        raise LabelwiseError(
            f"{a.tag} and {b.tag} are ordinal with the labels in different orders, so their scales differ"
        )
    measured_a, measured_b = (
        run_eval(str(artifact.tag), data, text_col=text_col, label_col=label_col, sample=sample, seed=seed,
                 n_resamples=n_resamples, concurrency=concurrency)
        for artifact in (a, b)
    )  # fmt: skip
    card_a, labelled, preds_a = measured_a.card, measured_a.data, measured_a.predictions
    preds_b = measured_b.predictions
    tests = compare_predictions(
        labelled.labels,
        [p.label for p in preds_a],
        [p.label for p in preds_b],
        labels=a.spec.task.labels,
        ordinal=a.spec.task.ordinal,
        n_resamples=n_resamples,
        random_state=seed,
    )
    rows = comparison_records(tests, alpha=alpha)
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
    concurrency: Concurrency = 16,
    as_json: JsonOption = False,
) -> None:
    """Fit calibration on part of DATA, report ECE before and after on the rest, package the result."""
    from ..evaluation import evaluate, fit_calibration, load_labelled
    from ..packaging import Classifier, load_artifact, package

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
    step(f"scoring {labelled.dataset.evaluated} rows with {artifact.tag}")
    with ProgressBar("scoring", labelled.dataset.evaluated) as bar:
        result = fit_calibration(
            artifact,
            labelled,
            method=method,  # type: ignore[arg-type]
            held_out=held_out,
            abstain_below=abstain_below,
            random_state=seed,
            on_progress=bar.advance,
            concurrency=concurrency,
        )
    report = result.report
    if report.coverage == 0:
        best = max((p.threshold for p in report.coverage_curve if p.coverage > 0), default=0.0)
        raise LabelwiseError(
            f"--abstain-below {abstain_below} gives no label to any of the {report.held_out_rows} "
            f"held-out texts; nothing packaged. Thresholds up to {best:.2f} keep some: see the "
            "coverage curve (--json)"
        )
    calibrated, _ = package(result.spec)
    # The new version is measured and profiled on the held-out rows, as `package --eval` would:
    # its eval card and drift reference come with it.
    card, _ = evaluate(
        Classifier(artifact=calibrated), result.held_out, predictions=result.predictions, random_state=seed
    )
    from ..evaluation import attach_evaluation

    attach_evaluation(
        str(calibrated.tag), card, result.held_out, result.predictions, source=data.name, seed=seed
    )
    if out is not None:
        out.write_text(report.model_dump_json(indent=2))
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    if as_json:
        print_json({"calibrated_tag": str(calibrated.tag), **report.model_dump(mode="json")})
        return
    console.print(
        f"[bold]{calibrated.tag}[/bold] (now {calibrated.tag.name}:latest): {artifact.tag} with {method} "
        f"calibration, fitted on {report.fit_rows} rows, measured on {report.held_out_rows} held-out rows"
        + ("" if abstain_below is None else f"; labels {report.coverage:.1%} of them")
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
    concurrency: Concurrency = 16,
) -> None:
    """Run a prompt experiment and write a leaderboard (CSV, JSON, HTML with plots)."""
    from ..evaluation import EVAL_CARD, ExperimentSpec, log_to_mlflow, run_experiment
    from ..packaging import Classifier, attach, package
    from ..reports import write_leaderboard

    experiment, root = ExperimentSpec.from_yaml(grid)
    out = out or grid.parent / f"{experiment.name}-results"

    def progress(i: int, total: int, candidate: Any) -> None:
        console.print(f"[{i + 1}/{total}] {candidate.name} ({candidate.tag})", highlight=False)

    board = run_experiment(
        experiment,
        root,
        classifier_factory=lambda artifact: Classifier(artifact=artifact, max_concurrency=concurrency),
        on_candidate=progress,
    )
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
