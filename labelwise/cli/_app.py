"""The ``labelwise`` command assembled from one module per command group.

Errors that labelwise raises on purpose are printed as one message, with no traceback, and the
command exits with status 2.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer
from rich.text import Text

from ..core import LabelwiseError
from ._batch import batch_app
from ._build import build_command
from ._canary import canary_command
from ._eval import calibrate_command, eval_app, experiment_command
from ._finetune import finetune_app
from ._models import models_app, package_command
from ._optimize import optimize_command
from ._predict import predict_command
from ._progress import err_console
from ._serve import feedback_app, local_app, serve_command
from ._train import train_embedding_command

app = typer.Typer(
    help="Ship text classifiers built on large language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"labelwise {version('labelwise')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Ship text classifiers built on large language models."""


app.command("package")(package_command)
app.add_typer(models_app, name="models")
app.command("predict")(predict_command)
app.command("serve")(serve_command)
app.command("build")(build_command)
app.add_typer(feedback_app, name="feedback")
app.command("canary")(canary_command)
app.add_typer(local_app, name="local")
app.add_typer(eval_app, name="eval")
app.command("calibrate")(calibrate_command)
app.command("experiment")(experiment_command)
app.command("optimize")(optimize_command)
app.add_typer(finetune_app, name="finetune")
app.command("train-embedding")(train_embedding_command)
app.add_typer(batch_app, name="batch")


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: run the app and turn labelwise errors into one-line messages."""
    # SIGTERM and SIGHUP end the command as an exception does, so that `finally` blocks and
    # exit handlers run: the local model server and any open files are closed, not abandoned.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        app()
    except LabelwiseError as exc:
        err_console.print(Text.assemble(("error: ", "red"), str(exc)), highlight=False)
        sys.exit(2)
