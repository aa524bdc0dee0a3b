"""What a bento of an artifact holds: labelwise's requirements for its technique, and the build options.

They come from labelwise's installed metadata: the core requirements, the extras the artifact's
technique serves with (``local`` for the embedded llama.cpp model, ``embeddings`` for
sentence-transformers), and ``postgres`` for a PostgreSQL prediction store.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from packaging.requirements import Requirement

from ..core import LabelwiseError
from ._artifact import ClassifierArtifact
from ._spec import ClassifierSpec
from ._techniques import technique_for

__all__ = ["SERVICE", "bento_options", "serving_requirements"]

SERVICE = "labelwise.service:ClassifierService"

_ALWAYS = ("postgres",)  # LABELWISE_DB_URL=postgresql+psycopg://... works wherever it is served


def serving_requirements(spec: ClassifierSpec) -> list[str]:
    """labelwise's core requirements and those of the extras a classifier of ``spec`` serves with."""
    extras = {*_ALWAYS, *technique_for(spec).serving_extras(spec)}
    try:
        declared = importlib.metadata.requires("labelwise") or []
    except importlib.metadata.PackageNotFoundError:
        raise LabelwiseError(
            "labelwise is not installed (pip install -e .): its requirements are unknown"
        ) from None
    requirements = [Requirement(line) for line in declared]

    def wanted(requirement: Requirement) -> bool:
        marker = requirement.marker
        return marker is None or any(marker.evaluate({"extra": extra}) for extra in extras)

    # An extra made of other extras ("labelwise[encoder]") brings theirs: to a fixed point.
    while True:
        nested = {e for r in requirements if r.name == "labelwise" and wanted(r) for e in r.extras}
        if nested <= extras:
            break
        extras |= nested
    packages = []
    for requirement in requirements:
        if requirement.name != "labelwise" and wanted(requirement):
            requirement.marker = None
            packages.append(str(requirement))
    return packages


def bento_options(artifact: ClassifierArtifact, *, pin: bool = True) -> dict[str, Any]:
    """The build options of a bento serving ``artifact``: ``labelwise build`` and ``bentofile.yaml``.

    The packages are exactly ``serving_requirements``. With ``pin`` the artifact is named by its
    full tag; without, by ``NAME:latest``, for a bentofile kept in a repository (BentoML resolves
    ``latest`` when it builds and records the version in the bento).
    """
    name = artifact.tag.name
    model = str(artifact.tag) if pin else f"{name}:latest"
    return {
        "service": SERVICE,
        "name": f"{name}-service",
        "description": f"labelwise service for {model} ({artifact.spec.technique.kind}).",
        "labels": {"owner": "labelwise", "artifact": model.replace(":", "-")},
        "include": ["labelwise/**/*.py", "labelwise/**/*.pyi"],
        "exclude": ["**/__pycache__/"],
        "python": {"packages": serving_requirements(artifact.spec), "lock_packages": False},
        "args": {"model": model},
    }
