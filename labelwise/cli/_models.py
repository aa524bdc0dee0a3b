"""``labelwise package`` and ``labelwise models``: store, list, show, export, import, delete artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ._common import (
    Concurrency,
    JsonOption,
    console,
    print_card,
    print_json,
    run_eval,
)

if TYPE_CHECKING:
    from ..packaging import ClassifierArtifact

models_app = typer.Typer(
    help="List, show, export, import and delete classifier artifacts.", no_args_is_help=True
)


def _summary(artifact: ClassifierArtifact) -> dict[str, Any]:
    spec = artifact.spec
    return {
        "tag": str(artifact.tag),
        "technique": spec.technique.kind,
        "scoring": spec.scored_by,
        "provider": spec.backend.provider,
        "model": spec.model_name,
        "labels": spec.task.labels,
        "content_hash": artifact.content_hash,
        "lineage": artifact.lineage.model_dump() if artifact.lineage else None,
        "attachments": sorted(artifact.attachments),
    }


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
    concurrency: Concurrency = 16,
    as_json: JsonOption = False,
) -> None:
    """Validate a spec and store it as a versioned artifact (same content, same version)."""
    from ..packaging import package

    artifact, created = package(spec)
    card = None
    if eval_data is not None:
        measured = run_eval(
            str(artifact.tag),
            eval_data,
            text_col=text_col,
            label_col=label_col,
            sample=sample,
            seed=seed,
            n_resamples=1000,
            concurrency=concurrency,
        )
        from ..evaluation import attach_evaluation

        card = measured.card
        artifact = attach_evaluation(
            str(artifact.tag), card, measured.data, measured.predictions, source=eval_data.name, seed=seed
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
    from ..packaging import list_artifacts

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
    from ..evaluation import EvalCard
    from ..packaging import load_artifact

    artifact = load_artifact(tag)
    summary = _summary(artifact)
    card = EvalCard.attached_to(artifact)
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
    out: Annotated[
        Path, typer.Option("--out", help="A .bentomodel file, or a folder (created if missing).")
    ] = Path("."),
) -> None:
    """Write an artifact to one .bentomodel file."""
    from ..packaging import export_artifact

    typer.echo(str(export_artifact(tag, out)))


@models_app.command("import")
def models_import(path: Annotated[Path, typer.Argument(help="A .bentomodel file.")]) -> None:
    """Bring an exported artifact into the store, verifying it (a version already there is kept)."""
    from ..packaging import import_artifact

    artifact, created = import_artifact(path)
    state = "imported" if created else "already in the store, unchanged:"
    console.print(f"{state} [bold]{artifact.tag}[/bold]")


@models_app.command("delete")
def models_delete(
    tag: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove an artifact from the store."""
    from ..packaging import delete_artifact, load_artifact

    resolved = load_artifact(tag).tag
    if not yes and not typer.confirm(f"Delete {resolved}?"):
        raise typer.Exit(1)
    delete_artifact(resolved)
    console.print(f"deleted {resolved}")
