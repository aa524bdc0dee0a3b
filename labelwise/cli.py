"""The ``labelwise`` command.

Errors that labelwise raises on purpose are printed as one message, with no traceback, and the
command exits with status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._console import JsonOption, console, parse_since, print_json
from .cli_batch import batch_app
from .cli_eval import (
    attach_evaluation,
    calibrate_command,
    eval_app,
    experiment_command,
    finetune_app,
    print_card,
    run_eval,
    train_embedding_command,
)
from .core import read_table
from .evaluation import EvalCard
from .evaluation._evaluate import EVAL_CARD
from .packaging import (
    ArtifactTag,
    Classifier,
    ClassifierArtifact,
    LabelwiseError,
    LocalServerConfig,
    Prediction,
    delete_artifact,
    export_artifact,
    import_artifact,
    list_artifacts,
    load_artifact,
    package,
)
from .packaging._local import detached_server, start_detached, stop_detached

app = typer.Typer(
    help="Ship text classifiers built on large language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(
    help="List, show, export, import and delete classifier artifacts.", no_args_is_help=True
)
local_app = typer.Typer(help="The embedded llama.cpp server.", no_args_is_help=True)
feedback_app = typer.Typer(help="Feedback collected by the service.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(local_app, name="local")
app.add_typer(feedback_app, name="feedback")
app.add_typer(eval_app, name="eval")
app.command("calibrate")(calibrate_command)
app.add_typer(finetune_app, name="finetune")
app.command("experiment")(experiment_command)
app.command("train-embedding")(train_embedding_command)
app.add_typer(batch_app, name="batch")


def _summary(artifact: ClassifierArtifact) -> dict[str, Any]:
    spec = artifact.spec
    return {
        "tag": str(artifact.tag),
        "technique": spec.technique.kind,
        "scoring": spec.scoring,
        "provider": spec.backend.provider,
        "model": spec.model_name,
        "labels": spec.task.labels,
        "content_hash": artifact.content_hash,
        "lineage": artifact.lineage.model_dump() if artifact.lineage else None,
        "attachments": sorted(artifact.attachments),
    }


@app.command("package")
def package_command(
    spec: Annotated[Path, typer.Argument(help="Classifier spec (YAML).")],
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Labelled data to measure it on; attaches an eval card and a drift reference profile.",
        ),
    ] = None,
    text_col: Annotated[str, typer.Option("--text-col")] = "text",
    label_col: Annotated[str, typer.Option("--label-col")] = "label",
    sample: Annotated[int | None, typer.Option("--sample", min=1)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Validate a spec and store it as a versioned artifact (same content, same version)."""
    artifact, created = package(spec)
    card = None
    if eval_data is not None:
        card, labelled, predictions = run_eval(
            str(artifact.tag),
            eval_data,
            text_col=text_col,
            label_col=label_col,
            sample=sample,
            seed=seed,
            n_resamples=1000,
        )
        artifact = attach_evaluation(
            str(artifact.tag), card, labelled.texts, predictions, source=eval_data.name, seed=seed
        )
    if as_json:
        print_json({**_summary(artifact), "created": created})
        return
    state = "packaged" if created else "already packaged, unchanged"
    console.print(f"[bold]{artifact.tag}[/bold] ({state})")
    if card is not None:
        print_card(card)


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Only versions of this classifier.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Stored classifiers, newest first."""
    rows = list(list_artifacts(name))
    if as_json:
        print_json([{"tag": str(tag), "created": created.isoformat()} for tag, created in rows])
        return
    table = Table("tag", "created")
    for tag, created in rows:
        table.add_row(str(tag), created.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


@models_app.command("show")
def models_show(
    tag: Annotated[str, typer.Argument(help="name:version, or name for the newest.")],
    as_json: JsonOption = False,
) -> None:
    """Describe one artifact (verifying its content hash)."""
    artifact = load_artifact(tag)
    summary = _summary(artifact)
    card = (
        EvalCard.model_validate_json(artifact.attachments[EVAL_CARD])
        if EVAL_CARD in artifact.attachments
        else None
    )
    if as_json:
        eval_card = card.model_dump(mode="json") if card else None
        print_json({**summary, "spec": artifact.spec.model_dump(mode="json"), "eval_card": eval_card})
        return
    table = Table(show_header=False)
    for key, value in summary.items():
        if key == "lineage" and value:
            for lineage_key, lineage_value in value.items():
                table.add_row(lineage_key, str(lineage_value))
        else:
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)
    if card is not None:
        print_card(card)


@models_app.command("export")
def models_export(
    tag: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Option("--out", help="A .bentomodel file or a folder.")] = Path("."),
) -> None:
    """Write an artifact to one .bentomodel file."""
    typer.echo(str(export_artifact(tag, out)))


@models_app.command("import")
def models_import(path: Annotated[Path, typer.Argument(help="A .bentomodel file.")]) -> None:
    """Bring an exported artifact into the store, verifying it."""
    artifact, _ = import_artifact(path)
    console.print(f"imported [bold]{artifact.tag}[/bold]")


@models_app.command("delete")
def models_delete(
    tag: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove an artifact from the store."""
    resolved = load_artifact(tag).tag
    if not yes and not typer.confirm(f"Delete {resolved}?"):
        raise typer.Exit(1)
    delete_artifact(resolved)
    console.print(f"deleted {resolved}")


def _read_texts(path: Path, text_col: str) -> list[str]:
    frame = read_table(path, required={text_col: "--text-col"})
    texts: list[str] = frame[text_col].fillna("").astype(str).tolist()
    return texts


def _prediction_row(text: str, prediction: Prediction) -> dict[str, Any]:
    return {"text": text, **prediction.model_dump()}


@app.command("predict")
def predict_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag, e.g. yelp-few-shot:latest.")],
    text: Annotated[str | None, typer.Argument(help="The text to classify.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="CSV, JSONL or Parquet file.")] = None,
    text_col: Annotated[str, typer.Option("--text-col", help="Column holding the text.")] = "text",
    max_concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Classify one text, or every row of a file."""
    if (text is None) == (input_file is None):
        raise LabelwiseError("give either a TEXT argument or --input FILE (not both)")
    texts = [text] if text is not None else _read_texts(input_file, text_col)  # type: ignore[arg-type]
    classifier = Classifier.load(ArtifactTag.from_str(tag), max_concurrency=max_concurrency)
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


@app.command("serve")
def serve_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag; `latest` is resolved once, now.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    db_url: Annotated[str | None, typer.Option(help="Prediction store URL (LABELWISE_DB_URL).")] = None,
) -> None:
    """Serve an artifact with BentoML: /classify, /feedback, /feedback/summary, /metrics."""
    resolved = load_artifact(tag).tag  # verify now, and pin: a later package must not swap it
    env = {**os.environ, "LABELWISE_MODEL": str(resolved), "LABELWISE_WORKERS": str(workers)}
    if db_url:
        env["LABELWISE_DB_URL"] = db_url
    console.print(f"serving [bold]{resolved}[/bold] at http://{host}:{port} with {workers} worker(s)")
    command = [
        sys.executable, "-m", "bentoml", "serve", "labelwise.service:ClassifierService",
        "--host", host, "--port", str(port),
        "--arg", f"model={resolved}", "--arg", f"workers={workers}",
    ]  # fmt: skip
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Option("--out", help="CSV, JSONL or Parquet file to write.")],
    db_url: Annotated[
        str | None, typer.Option(help="Prediction store URL (default: LABELWISE_DB_URL).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only predictions made since (ISO date or time).")] = None,
    include_unlabelled: Annotated[
        bool, typer.Option("--include-unlabelled", help="Also rows whose true label is unknown.")
    ] = False,
) -> None:
    """Write feedback joined with its predictions as a labelled dataset (text, label, ...)."""
    from .service._export import export_feedback

    rows = export_feedback(
        out, db_url=db_url, since=parse_since(since), include_unlabelled=include_unlabelled
    )
    console.print(f"wrote {rows} rows to {out}")


LogprobsOption = Annotated[
    bool, typer.Option("--logprobs", help="The server for scoring: logprobs (computes all logits).")
]


@local_app.command("start")
def local_start(logprobs: LogprobsOption = False) -> None:
    """Start a llama.cpp server that later commands reuse until `labelwise local stop`."""
    server = start_detached(LocalServerConfig(logits_all=logprobs))
    console.print(f"local server at {server.base_url} (pid {server.pid})")


@local_app.command("stop")
def local_stop(logprobs: LogprobsOption = False) -> None:
    """Stop the server `labelwise local start` left running."""
    stopped = stop_detached(LocalServerConfig(logits_all=logprobs))
    console.print("stopped" if stopped else "no local server was running")


@local_app.command("status")
def local_status(logprobs: LogprobsOption = False) -> None:
    """Whether a detached local server is running."""
    server = detached_server(LocalServerConfig(logits_all=logprobs))
    console.print(f"running at {server.base_url} (pid {server.pid})" if server else "not running")


def main() -> None:
    """Entry point: run the app and turn labelwise errors into one-line messages."""
    try:
        app()
    except LabelwiseError as exc:
        Console(stderr=True, soft_wrap=True).print(
            Text.assemble(("error: ", "red"), str(exc)), highlight=False
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
