"""``labelwise canary``: replay the artifact's golden set against the live backend."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..core import LabelwiseError
from ._common import JsonOption, console, print_json


def canary_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag; packaged with --eval, so it holds a golden set.")],
    min_agreement: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Alarm when agreement is clearly below this "
            "(default: LABELWISE_CANARY_MIN_AGREEMENT, else 0.95).",
        ),
    ] = None,
    fail_on_fingerprint: Annotated[
        bool, typer.Option("--fail-on-fingerprint", help="A new system_fingerprint alone raises the alarm.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Does the live backend still label the golden set as the packaged classifier did?

    Exit status 1 on alarm: agreement below --min-agreement beyond the golden set's noise, or a
    changed label distribution (the drift checks' rules). A changed system_fingerprint is shown,
    and raises the alarm only with --fail-on-fingerprint.
    """
    from ..core import Settings, run_sync
    from ..monitoring import CanaryRun, GoldenSet, canary_verdict, replay_golden_set
    from ..packaging import ClassifierRuntime, load_artifact

    artifact = load_artifact(tag)
    golden = GoldenSet.attached_to(artifact)
    if golden is None:
        raise LabelwiseError(
            f"{artifact.tag} has no golden set: package it with --eval DATA, or run "
            f"`labelwise eval {artifact.tag} DATA --attach`"
        )

    async def replay() -> CanaryRun:
        # One event loop for the calls and the clean-up: connections belong to their loop. No
        # cache: cached embeddings would hide the provider's change.
        async with ClassifierRuntime(artifact=artifact, use_cache=False) as classifier:
            return await replay_golden_set(golden, classifier.aclassify, tag=str(artifact.tag))

    run = run_sync(replay())
    if min_agreement is None:
        min_agreement = Settings.from_env().canary_min_agreement
    verdict = canary_verdict(run, min_agreement=min_agreement, fail_on_fingerprint=fail_on_fingerprint)
    if as_json:
        print_json(verdict)
    else:
        table = Table(
            "golden texts", "agreement [95%]", "labels then", "labels now", "fingerprint then", "now"
        )
        table.add_row(
            str(run.items),
            f"{run.agreement:.3f} [{run.agreement_low:.3f}, {run.agreement_high:.3f}]",
            _counts(run.packaged_labels),
            _counts(run.live_labels),
            ", ".join(run.packaged_fingerprints) or "-",
            ", ".join(run.system_fingerprints) or "-",
        )
        console.print(table)
        for reason in verdict["reasons"]:
            console.print(("" if reason.startswith("(notice)") else "[red]alarm:[/red] ") + reason)
        console.print("[red]ALARM[/red]" if verdict["alarm"] else "ok: the backend answers as packaged")
    if verdict["alarm"]:
        raise typer.Exit(1)


def _counts(labels: list[str | None]) -> str:
    from collections import Counter

    return " ".join(f"{label}:{n}" for label, n in sorted(Counter(str(v) for v in labels).items()))
