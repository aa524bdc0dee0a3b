"""``labelwise build``: a bento that serves one artifact, with exactly the packages it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import JsonOption, console, print_json


def build_command(
    tag: Annotated[str, typer.Argument(help="Artifact tag; `latest` is resolved once, now, and pinned.")],
    bentofile: Annotated[
        Path | None,
        typer.Option(
            "--bentofile",
            help="Write the build options as a bentofile.yaml (for `bentoml build`), naming NAME:latest; "
            "build nothing.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build a bento of the service and the artifact, installing what its technique serves with."""
    import bentoml

    import labelwise

    from ..packaging import bento_options, load_artifact

    artifact = load_artifact(tag)
    if bentofile is not None:
        write_bentofile(bento_options(artifact, pin=False), bentofile)
        console.print(f"wrote {bentofile}; build it with: bentoml build -f {bentofile}", highlight=False)
        return
    options = bento_options(artifact)
    packages = options["python"]["packages"]
    bento = bentoml.bentos.build(
        options.pop("service"),
        **options,
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


def write_bentofile(options: dict[str, Any], path: Path) -> None:
    """``bento_options`` as a bentofile.yaml, with a header saying where it comes from."""
    import yaml

    from ..core import write_atomic

    header = (
        "# Written by `labelwise build TAG --bentofile bentofile.yaml`: the options `labelwise build`\n"
        "# uses, its packages computed from pyproject.toml for the artifact's technique.\n"
        "# Regenerate it; do not edit it.\n"
    )
    write_atomic(path, (header + yaml.safe_dump(options, sort_keys=False)).encode())
