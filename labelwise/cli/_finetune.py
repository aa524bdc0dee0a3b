"""``labelwise finetune``: training files for a provider's fine-tuning, and the reported-vs-measured gap."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
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
    print_card,
    print_json,
)
from ._progress import err_console, step

if TYPE_CHECKING:
    from ..packaging import ClassifierArtifact, ClassifierSpec, Hyperparameters
    from ..training import Deployment, GapReport, JobProgress, TrainProgress

T = TypeVar("T")

finetune_app = typer.Typer(
    help="Fine-tune on a provider (start, import, sweep), fine-tuning data, and reported-versus-"
    "measured metric gaps.",
    no_args_is_help=True,
)

SpecOption = Annotated[
    Path,
    typer.Option(
        "--spec",
        help="A fine_tuned spec: its system, prompt_format, backend and decoding say how the model "
        "is called; its model_id and provenance are replaced by the job's.",
    ),
]
# OpenAI's price of training gpt-4o-mini (training._jobs.DEFAULT_USD_PER_MILLION_TRAINING_TOKENS);
# a literal, so the command starts without importing the training room; a test keeps them equal.
DEFAULT_PRICE = 3.0
Price = Annotated[float, typer.Option("--price", help="USD per million training tokens, for the cost.")]
ValidationShare = Annotated[
    float | None,
    typer.Option(
        "--validation-share", min=0.01, max=0.9,
        help="Share of the training rows held out for validation (default: enough for a +-5 point interval).",
    ),
]  # fmt: skip
PollInterval = Annotated[
    float, typer.Option("--poll-interval", min=0.01, help="Seconds between looks at the job.")
]


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
    price: Price = DEFAULT_PRICE,
    validation_share: ValidationShare = None,
    sample: Sample = None,
    seed: Seed = 0,
    as_json: JsonOption = False,
) -> None:
    """Write train/validation JSONL (chat and prompt/completion) with a representative validation split."""
    from ..evaluation import load_labelled
    from ..packaging import ClassifierSpec
    from ..training import export_finetune

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
        validation_share=validation_share,
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
    from ..evaluation import load_labelled
    from ..packaging import Classifier
    from ..training import gap_report

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
    _print_gap(report)


def _print_gap(report: GapReport) -> None:
    table = Table("metric", "reported", "validation, as trained", "validation, as served", "test")
    for metric in sorted(set(report.reported) | set(report.validation_as_served.metrics)):

        def cell(measured: Any, metric: str = metric) -> str:
            if measured is None or metric not in measured.metrics:
                return "-"
            m = measured.metrics[metric]
            return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"

        value = report.reported.get(metric)
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


class _JobDisplay:
    """A job's status changes as lines, and its steps as a bar with the latest losses."""

    def __init__(self) -> None:
        self._status: str | None = None
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, progress: JobProgress, points: list[dict[str, float]]) -> None:
        self._show_steps(progress)  # the last steps, before the bar makes way for a new status
        if progress.status != self._status:
            self.stop()
            step(f"job {progress.job_id}: {progress.status}")
            self._status = progress.status
        if progress.total_steps and self._progress is None and progress.status == "running":
            self._progress = Progress(
                TextColumn("training"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"), console=err_console,
            )  # fmt: skip
            self._task = self._progress.add_task("training", total=progress.total_steps, losses="")
            self._progress.start()
            self._show_steps(progress)

    def _show_steps(self, progress: JobProgress) -> None:
        if self._progress is None:
            return
        latest = progress.latest
        losses = "  ".join(
            f"{name} {latest[name]:.3f}" for name in ("train_loss", "valid_loss") if name in latest
        )
        self._progress.update(self._task, completed=progress.step, losses=losses)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _hyperparameters(values: list[str]) -> Hyperparameters:
    from pydantic import ValidationError

    from ..packaging import Hyperparameters

    chosen: dict[str, str] = {}
    for value in values:
        for pair in filter(None, value.split(",")):
            key, sep, setting = pair.partition("=")
            if not sep:
                raise LabelwiseError(f"--hyperparameters {pair!r}: expected name=value, e.g. n_epochs=3")
            chosen[key.strip()] = setting.strip()
    try:
        return Hyperparameters.model_validate(chosen)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LabelwiseError(
            f"--hyperparameters: {problems} (names: n_epochs, batch_size, learning_rate_multiplier)"
        ) from None


def _fine_tuned_template(path: Path) -> tuple[ClassifierSpec, str]:
    """The spec at ``path`` and its base model; a clear error unless it is a fine_tuned spec."""
    from ..packaging import ClassifierSpec
    from ..training import template_base_model

    spec = ClassifierSpec.from_yaml(path)
    return spec, template_base_model(spec, where=str(path))


def _following(spec: ClassifierSpec, run: Callable[[_JobDisplay, threading.Event], T]) -> T:
    """``run(display, interrupted)``, a workflow that follows a job; on Ctrl-C, ask whether to cancel it."""
    from ..training import JobStopped, cancel_fine_tuning

    display = _JobDisplay()
    # Ctrl-C only sets a flag that the workflow reads between polls: a KeyboardInterrupt raised
    # inside the HTTP client can be lost in its clean-up, and the job must be asked about.
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        return run(display, interrupted)
    except JobStopped as stopped:
        display.stop()
        try:
            wanted = typer.confirm(
                f"\nCancel fine-tuning job {stopped.job_id} on {stopped.provider}?", default=False, err=True
            )
        except (typer.Abort, EOFError):
            wanted = False
        if wanted:
            err_console.print(f"job {stopped.job_id}: {cancel_fine_tuning(spec, stopped.job_id)}")
        else:
            err_console.print(f"job {stopped.job_id} goes on; run the same command again to follow it")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        display.stop()


def _describe(artifact: ClassifierArtifact, created: bool) -> None:
    provenance = artifact.spec.technique.job_provenance
    if provenance is None:
        return
    state = "packaged" if created else "already packaged, unchanged"
    console.print(f"{artifact.tag} ({state}): model {artifact.spec.model_name}")
    cost = "" if provenance.estimated_cost_usd is None else f", about ${provenance.estimated_cost_usd:.2f}"
    console.print(
        f"job {provenance.job_id} on {provenance.base_model}: {provenance.training_rows} training and "
        f"{provenance.validation_rows} validation rows, {provenance.trained_tokens} trained tokens{cost}"
    )
    reported = ", ".join(f"{k} {v:.3f}" for k, v in sorted(provenance.reported_metrics.items()))
    if reported:
        console.print(f"reported: {reported} ({provenance.reported_metrics_source})")


DeployOption = Annotated[
    str | None,
    typer.Option(
        "--deploy",
        help="Azure OpenAI: make a deployment of this name for the fine-tuned model and call it through "
        "it (needs AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_MANAGEMENT_TOKEN; without them, "
        "prints what to run).",
    ),
]
DeploymentOption = Annotated[
    str | None,
    typer.Option(
        "--deployment", help="Azure OpenAI: an existing deployment that serves the fine-tuned model."
    ),
]


def _deployment(deploy: str | None, deployment: str | None, poll_s: float = 10.0) -> Deployment | None:
    from ..training import Deployment

    if deploy and deployment:
        raise typer.BadParameter("give --deploy (make one) or --deployment (an existing one), not both")
    if deploy or deployment:
        return Deployment(str(deploy or deployment), create=bool(deploy), poll_s=poll_s)
    return None


@finetune_app.command("start")
def finetune_start(
    data: Annotated[Path, typer.Argument(help="Labelled CSV, JSONL or Parquet file.")],
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Provider: a fine_tuned spec (its system, prompt_format, backend and decoding say how the "
            "model is called; model_id and provenance come from the job). --local: not needed.",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="Fine-tune an encoder here, on this machine's CPU or GPU, with no provider."
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="--local: the artifact's name (default: the data file's).")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option("--epochs", min=0.01, help="--local: epochs (default 2).")
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens", min=8, help="--local: tokens kept of each text, its start and end (default 128)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="--local: default 16.")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", min=0, help="--local: the encoder's (default 5e-5).")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="--local: auto (default: few_labels up to 100 training rows a label, end_to_end above), "
            "end_to_end, or few_labels (contrastive pairs, then a logistic-regression head).",
        ),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option("--loss", help="--local: cross_entropy (default) or ordinal (ordered labels)."),
    ] = None,
    labelled_rows: Annotated[
        int | None,
        typer.Option(
            "--labelled-rows",
            min=4,
            help="--local: train and validate on this many of the rows left after the test share "
            "(seeded, stratified): what more data buys, on the same test rows.",
        ),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="--local: auto (a GPU if present), cpu, cuda, cuda:N or mps.")
    ] = "auto",
    runtime: Annotated[
        str,
        typer.Option("--runtime", help="--local: torch, or onnx_int8 (checked against the float model)."),
    ] = "torch",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the files, job.json and reports (default finetune-NAME)."),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="Provider: default the spec's provenance.base_model. --local: a Hugging Face encoder "
            "folder (default all-MiniLM-L6-v2, shipped as a package).",
        ),
    ] = None,
    hyperparameters: Annotated[
        list[str] | None,
        typer.Option(
            "--hyperparameters",
            help="name=value, repeatable or comma-separated: n_epochs, batch_size, "
            "learning_rate_multiplier (unset: the provider chooses).",
        ),
    ] = None,
    suffix: Annotated[str | None, typer.Option(help="Suffix of the model's name.")] = None,
    test_share: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Share of rows held out for the eval card.")
    ] = 0.2,
    validation_share: ValidationShare = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    price: Price = DEFAULT_PRICE,
    poll_interval: PollInterval = 10.0,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Make a new job even when one is recorded in --out (--local: train from the start).",
        ),
    ] = False,
    concurrency: Concurrency = 16,
    deploy: DeployOption = None,
    deployment: DeploymentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune (on the provider, or here with --local), package the model, evaluate it, report the gap.

    Interrupted, the same command follows the same job again (its id is in OUT/job.json), or with
    --local goes on from the last checkpoint in OUT/checkpoint.
    """
    from ..training import finetune_start as start

    if local:
        recipe = {"base_model": base_model, "epochs": epochs, "max_tokens": max_tokens,
                  "batch_size": batch_size,
                  "learning_rate": learning_rate, "loss": loss, "mode": mode}  # fmt: skip
        _start_local(
            data, name=name, recipe=recipe, out=out, test_share=test_share, text_col=text_col,
            label_col=label_col, sample=sample, seed=seed, labelled_rows=labelled_rows, device=device,
            runtime=runtime, restart=restart, as_json=as_json,
        )  # fmt: skip
        return
    if spec is None:
        raise typer.BadParameter("give --spec (a fine_tuned spec) for a provider, or --local to train here")
    template, base = _fine_tuned_template(spec)
    result = _following(
        template,
        lambda display, interrupted: start(
            data, template, out=out, base_model=base_model or base,
            hyperparameters=_hyperparameters(hyperparameters or []), suffix=suffix, test_share=test_share,
            validation_share=validation_share, text_col=text_col, label_col=label_col, sample=sample,
            seed=seed, usd_per_million_training_tokens=price, poll_s=poll_interval, restart=restart,
            concurrency=concurrency, deployment=_deployment(deploy, deployment, poll_interval),
            on_step=step, on_job_update=display, stop=interrupted.is_set,
        ),
    )  # fmt: skip
    if as_json:
        print_json(result.as_dict())
        return
    _describe(result.artifact, result.created)
    if result.card is not None:
        print_card(result.card)
    if result.gap is not None:
        _print_gap(result.gap)


def _start_local(
    data: Path, *, name: str | None, recipe: dict[str, Any], out: Path | None, runtime: str, as_json: bool,
    **options: Any,
) -> None:  # fmt: skip
    from pydantic import ValidationError

    from ..packaging import format_validation_error
    from ..training import LocalRecipe, finetune_local

    if runtime not in ("torch", "onnx_int8"):
        raise typer.BadParameter(f"--runtime {runtime}: expected torch or onnx_int8")
    try:
        chosen = LocalRecipe.model_validate({k: v for k, v in recipe.items() if v is not None})
    except ValidationError as exc:
        raise LabelwiseError(format_validation_error(exc, source="the options", what="recipe")) from None
    name = name or data.stem.replace("_", "-").lower()
    with _TrainingDisplay() as display:
        result = finetune_local(
            data, name=name, out=out or Path(f"finetune-{name}"), recipe=chosen, runtime=runtime,  # type: ignore[arg-type]
            on_step=display.say, on_progress=display, **options,
        )  # fmt: skip
    if as_json:
        print_json(result.as_dict())
        return
    report = result.report
    state = "packaged" if report.created else "already packaged, unchanged"
    console.print(f"{report.artifact_tag} ({state}): {report.base_model} fine-tuned on {report.device}")
    console.print(
        f"{report.train_rows} training, {report.validation_rows} validation, "
        f"{report.test_rows} held-out rows; "
        f"{report.steps} steps in {report.training_seconds:.0f} s ({report.examples_per_s:.1f} examples/s), "
        f"kept step {report.best_step}{', stopped early' if report.stopped_early else ''}"
    )
    if report.int8_check is not None:
        check = report.int8_check
        console.print(
            f"int8 ONNX against float on {check.rows} held-out rows: same label {check.label_agreement:.1%}, "
            f"accuracy {check.int8_accuracy:.3f} vs {check.float_accuracy:.3f}"
        )
    print_card(result.card)
    _print_gap(result.gap)


class _TrainingDisplay:
    """A bar of training steps on stderr, with the latest losses, validation accuracy and time left."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("training"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}"), console=err_console,
        )  # fmt: skip
        self._task: Any = None
        self._figures = ""

    def __enter__(self) -> _TrainingDisplay:
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def say(self, message: str) -> None:
        if self._task is None:
            step(message)
        else:
            self._progress.console.print(message)

    def __call__(self, progress: TrainProgress) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("training", total=progress.total_steps, figures="")
        if progress.valid_loss is not None:
            self._figures = (
                f"epoch {progress.epoch:.2f}  loss {progress.train_loss:.3f}  "
                f"valid loss {progress.valid_loss:.3f}"
                f"  valid acc {progress.valid_accuracy:.3f}"
            )
        left = "" if progress.seconds_left is None else f"  {progress.seconds_left / 60:.1f} min left"
        self._progress.update(self._task, completed=progress.step, figures=self._figures + left)


@finetune_app.command("import")
def finetune_import(
    job_id: Annotated[str, typer.Argument(help="The provider's fine-tuning job id (ftjob-...).")],
    spec: SpecOption,
    test: Annotated[
        Path | None, typer.Option("--test", help="Labelled data to evaluate the model on (eval card).")
    ] = None,
    text_col: TextCol = "text",
    label_col: LabelCol = "label",
    sample: Sample = None,
    seed: Seed = 0,
    price: Price = DEFAULT_PRICE,
    concurrency: Concurrency = 16,
    deploy: DeployOption = None,
    deployment: DeploymentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Package the model of a succeeded job run elsewhere, its provenance read from the provider."""
    from ..training import finetune_import as import_job

    template, _ = _fine_tuned_template(spec)
    result = import_job(
        job_id, template, test=test, text_col=text_col, label_col=label_col, sample=sample, seed=seed,
        usd_per_million_training_tokens=price, concurrency=concurrency,
        deployment=_deployment(deploy, deployment), on_step=step,
    )  # fmt: skip
    if as_json:
        result_dict = result.as_dict()
        print_json({key: result_dict[key] for key in ("tag", "created", "spec", "eval_card")})
        return
    _describe(result.artifact, result.created)
    if result.card is not None:
        print_card(result.card)


@finetune_app.command("sweep")
def finetune_sweep(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep (YAML): base spec, data, space, search.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the files and reports (default sweep-NAME).")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="A Ray cluster to run on (default: this machine).")
    ] = None,
    package_best: Annotated[
        bool, typer.Option("--package-best", help="Package the best trial's model, its eval card attached.")
    ] = False,
    mlflow: Annotated[
        str | None, typer.Option("--mlflow", help="Log each trial to this MLflow tracking URI.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search fine-tuning hyperparameters on Ray Tune, stop poor jobs early, rank by measured metric."""
    from ..packaging import package
    from ..reports import leaderboard_rows, log_sweep_to_mlflow, write_sweep
    from ..training import SweepSpec, run_sweep

    sweep = SweepSpec.from_yaml(sweep_file)
    folder = out or Path(f"sweep-{sweep.name}")
    outcome = run_sweep(sweep, sweep_file.parent, folder, address=address, on_step=step)
    board = outcome.board
    paths = write_sweep(board, folder)
    if mlflow:
        experiment = log_sweep_to_mlflow(board, mlflow, artifact_dir=folder / "mlruns")
        step(f"logged {len(board.rows)} trials to MLflow experiment {experiment}")
    packaged = None
    if package_best:
        if outcome.best_spec is None or board.best is None or board.best.card is None:
            raise LabelwiseError("no trial finished: nothing to package")
        artifact, _ = package(outcome.best_spec, model_files=outcome.best_files)
        packaged = str(artifact.tag)
        card = board.best.card.model_copy(update={"artifact_tag": packaged})
        assert outcome.test is not None
        from ..evaluation import attach_evaluation

        attach_evaluation(packaged, card, outcome.test, outcome.best_predictions,
                          source=str(folder / "test.csv"), seed=sweep.seed)  # fmt: skip
    records = leaderboard_rows(board)
    if as_json:
        print_json({"leaderboard": records, "packaged": packaged, "files": [str(p) for p in paths]})
        return
    short = {"n_epochs": "epochs", "batch_size": "batch", "learning_rate_multiplier": "lr x",
             "learning_rate": "lr", "max_tokens": "tokens"}  # fmt: skip
    job = {} if sweep.local else {"job_id": "job"}  # trials trained here run no provider job
    loss = "valid loss" if sweep.local else "valid loss (reported)"
    columns = {"rank": "rank", **{name: short.get(name, name) for name in sweep.space}, "status": "status",
               **job, "steps": "steps", "reported_valid_loss": loss,
               f"measured_{sweep.metric}": f"{sweep.metric} (measured)"}  # fmt: skip
    table = Table(*columns.values())
    for record in records:
        # Settings keep their significant digits (a learning rate of 2e-05 is not 0.000).
        cells = [f"{v:.3g}" if key in sweep.space and isinstance(v, float) else v for key, v in
                 ((key, record.get(key)) for key in columns)]  # fmt: skip
        table.add_row(*("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells))
    console.print(table)
    if packaged:
        console.print(f"packaged the best trial as {packaged}")
    console.print(f"report: {folder / 'report.html'}")
