"""``labelwise serve``, ``labelwise feedback`` and ``labelwise local``: the service and its helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from ._common import (
    console,
    parse_since,
)

if TYPE_CHECKING:
    from ..packaging import ClassifierArtifact
    from ..store import Bucket

feedback_app = typer.Typer(help="Feedback collected by the service.", no_args_is_help=True)
local_app = typer.Typer(help="The embedded llama.cpp server.", no_args_is_help=True)


def serve_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag; `latest` is resolved once, now.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    db_url: Annotated[str | None, typer.Option(help="Prediction store URL (LABELWISE_DB_URL).")] = None,
) -> None:
    """Serve an artifact with BentoML: /classify, /feedback, /feedback/summary, /metrics."""
    from ..packaging import load_artifact

    artifact = load_artifact(tag)  # verify now, and pin: a later package must not swap it
    resolved = artifact.tag
    env = {**os.environ, "LABELWISE_MODEL": str(resolved), "LABELWISE_WORKERS": str(workers)}
    if db_url:
        env["LABELWISE_DB_URL"] = db_url
    console.print(f"serving [bold]{resolved}[/bold] at http://{host}:{port} with {workers} worker(s)")
    console.print(_measured(artifact), highlight=False)
    command = [
        sys.executable, "-m", "bentoml", "serve", "labelwise.service:ClassifierService",
        "--host", host, "--port", str(port),
        "--arg", f"model={resolved}", "--arg", f"workers={workers}",
    ]  # fmt: skip
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


def _measured(artifact: ClassifierArtifact) -> str:
    """What the artifact's eval card says of it, in one line, so nobody serves it blind."""
    from ..evaluation import EvalCard

    card = EvalCard.attached_to(artifact)
    if card is None:
        return "not measured: `labelwise eval` or `package --eval` attaches an eval card"
    accuracy, baseline = card.metrics["accuracy"], card.baseline.get("accuracy")
    than = "" if baseline is None else f", most-frequent label {baseline:.3f}"
    return (
        f"measured accuracy {accuracy.value:.3f} [{accuracy.low:.3f}, {accuracy.high:.3f}] on "
        f"{card.dataset.evaluated} held-out rows of {card.dataset.name}{than}"
    )


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
    from ..store import export_feedback

    rows = export_feedback(
        out, db_url=db_url, since=parse_since(since), include_unlabelled=include_unlabelled
    )
    console.print(f"wrote {rows} rows to {out}")


@feedback_app.command("report")
def feedback_report(
    out: Annotated[Path, typer.Option("--out", help="HTML page to write (its JSON is written beside it).")],
    db_url: Annotated[
        str | None, typer.Option(help="Prediction store URL (default: LABELWISE_DB_URL).")
    ] = None,
    bucket: Annotated[str, typer.Option(help="Time buckets: hour, day or week (UTC).")] = "day",
    since: Annotated[str | None, typer.Option(help="Only predictions made since (ISO date or time).")] = None,
    artifact: Annotated[str | None, typer.Option(help="Only this artifact version (name:version).")] = None,
) -> None:
    """Feedback over time per artifact version: thumbs-up rate, accuracy and signals, with intervals."""
    from ..monitoring import feedback_summary
    from ..reports import write_feedback_report

    if bucket not in ("hour", "day", "week"):
        raise typer.BadParameter("hour, day or week", param_hint="--bucket")
    chosen = cast("Bucket", bucket)
    summary = feedback_summary(db_url, bucket=chosen, since=parse_since(since), artifact_tag=artifact)
    written = write_feedback_report(summary, out)
    for artifact_summary in summary.by_artifact:
        console.print(
            f"{artifact_summary.artifact_tag}: {artifact_summary.predictions} predictions, "
            f"{artifact_summary.feedback} thumbs, {artifact_summary.labelled} labelled, "
            f"{len(artifact_summary.series)} {bucket}(s)"
        )
    console.print("wrote " + ", ".join(str(path) for path in written))


LogprobsOption = Annotated[
    bool, typer.Option("--logprobs", help="The server for scoring: logprobs (computes all logits).")
]


@local_app.command("start")
def local_start(logprobs: LogprobsOption = False) -> None:
    """Start a llama.cpp server that later commands reuse until `labelwise local stop`."""
    from ..backends import LocalServerConfig, start_detached

    server = start_detached(LocalServerConfig(logits_all=logprobs))
    console.print(f"local server at {server.base_url} (pid {server.pid})")


@local_app.command("stop")
def local_stop(logprobs: LogprobsOption = False) -> None:
    """Stop the server `labelwise local start` left running."""
    from ..backends import LocalServerConfig, stop_detached

    stopped = stop_detached(LocalServerConfig(logits_all=logprobs))
    console.print("stopped" if stopped else "no local server was running")


@local_app.command("status")
def local_status() -> None:
    """The detached local servers (`labelwise local start`), for generation and for logprobs."""
    from ..backends import LocalServerConfig, detached_server

    for logprobs in (False, True):
        server = detached_server(LocalServerConfig(logits_all=logprobs))
        kind = "logprobs server (--logprobs)" if logprobs else "generation server"
        state = f"running at {server.base_url} (pid {server.pid})" if server else "not running"
        console.print(f"{kind}: {state}")
