"""``labelwise build``: a bento that serves one artifact, with exactly the packages it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOption, console, print_json


def build_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag; `latest` is resolved once, now, and pinned.")],
    as_json: JsonOption = False,
) -> None:
    """Build a bento of the service and the artifact, installing what its technique serves with."""
    import bentoml

    import labelwise

    from ..packaging import load_artifact, serving_requirements

    artifact = load_artifact(tag)
    packages = serving_requirements(artifact)
    bento = bentoml.bentos.build(
        "labelwise.service:ClassifierService",
        name=f"{artifact.tag.name}-service",
        description=f"labelwise service for {artifact.tag} ({artifact.spec.technique.kind}).",
        labels={"owner": "labelwise", "artifact": f"{artifact.tag.name}-{artifact.tag.version}"},
        include=["labelwise/**/*.py", "labelwise/**/*.pyi"],
        exclude=["**/__pycache__/"],
        python={"packages": packages, "lock_packages": False},
        args={"model": str(artifact.tag)},
        # The folder that holds labelwise/: the repository, or site-packages.
        build_ctx=str(Path(labelwise.__file__).resolve().parent.parent),
    )
    if as_json:
        print_json({"bento": str(bento.tag), "artifact": str(artifact.tag), "packages": packages})
        return
    console.print(f"built [bold]{bento.tag}[/bold] serving {artifact.tag}; it installs:")
    for package in packages:
        console.print(f"  {package}", highlight=False, markup=False)
    console.print(f"serve it with: bentoml serve {bento.tag}", highlight=False)
