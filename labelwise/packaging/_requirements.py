"""What serving an artifact installs: labelwise's requirements for its technique.

They come from labelwise's installed metadata: the core requirements, the extras the artifact's
technique serves with (``local`` for the embedded llama.cpp model, ``embeddings`` for
sentence-transformers), and ``postgres`` for a PostgreSQL prediction store.
"""

from __future__ import annotations

import importlib.metadata

from packaging.requirements import Requirement

from ..core import LabelwiseError
from ._artifact import ClassifierArtifact
from ._techniques import technique_for

__all__ = ["serving_requirements"]

_ALWAYS = ("postgres",)  # LABELWISE_DB_URL=postgresql+psycopg://... works wherever it is served


def serving_requirements(artifact: ClassifierArtifact) -> list[str]:
    """labelwise's core requirements and those of the extras this artifact serves with."""
    extras = {*_ALWAYS, *technique_for(artifact.spec).serving_extras(artifact.spec)}
    try:
        declared = importlib.metadata.requires("labelwise") or []
    except importlib.metadata.PackageNotFoundError:
        raise LabelwiseError(
            "labelwise is not installed (pip install -e .): its requirements are unknown"
        ) from None
    packages = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.name == "labelwise":  # an extra made of other extras
            continue
        marker, requirement.marker = requirement.marker, None
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
            packages.append(str(requirement))
    return packages
