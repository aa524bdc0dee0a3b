"""Arguments of the served artifact, shared by the classifier service and the embedding runner."""

from __future__ import annotations

import os

import bentoml
from pydantic import BaseModel, Field

from ..packaging import ArtifactError, stored_technique

__all__ = ["ARGS", "ServiceArgs", "serves_embeddings"]


class ServiceArgs(BaseModel):
    """``bentoml serve|build --arg model=NAME:VERSION --arg workers=N``, or the environment."""

    model: str = Field(default_factory=lambda: os.environ.get("LABELWISE_MODEL", ""))
    workers: int = Field(default_factory=lambda: int(os.environ.get("LABELWISE_WORKERS", "1")), ge=1)


ARGS = bentoml.use_arguments(ServiceArgs)


def serves_embeddings(tag: str) -> bool:
    """Whether ``tag`` names an embedding artifact (served through the batching runner)."""
    if not tag:
        return False
    try:
        return stored_technique(tag) == "embedding"  # the workers load and verify it in full
    except ArtifactError:
        return False  # the service reports the missing artifact when it starts
