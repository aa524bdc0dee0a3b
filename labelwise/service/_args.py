"""Arguments of the served artifact, shared by the classifier service and the embedding runner."""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, Field

from ..core import Settings
from ..packaging import TECHNIQUES, ArtifactError, stored_technique

__all__ = ["ARGS", "ServiceArgs", "serves_embeddings"]


class ServiceArgs(BaseModel):
    """``bentoml serve|build --arg model=NAME:VERSION --arg workers=N``, or the environment."""

    model: str = Field(default_factory=lambda: Settings.from_env().model)
    workers: int = Field(default_factory=lambda: Settings.from_env().workers, ge=1)


ARGS = bentoml.use_arguments(ServiceArgs)


def serves_embeddings(tag: str) -> bool:
    """Whether ``tag``'s technique batches across requests (served through the batching runner)."""
    if not tag:
        return False
    try:
        # Only the store's labels: the workers load and verify the artifact in full.
        return TECHNIQUES[stored_technique(tag)].batches_across_requests
    except ArtifactError:
        return False  # the service reports the missing artifact when it starts
