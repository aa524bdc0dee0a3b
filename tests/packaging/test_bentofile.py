"""The repository's bentofile.yaml is what `labelwise build` computes for the example classifier."""

from __future__ import annotations

import yaml

from labelwise.packaging import ClassifierArtifact, ClassifierSpec, bento_options
from tests.conftest import REPO


def example_spec() -> ClassifierSpec:
    """The classifier `make serve` trains (train-embedding on the Yelp sample)."""
    return ClassifierSpec.from_dict(
        {
            "name": "yelp-embedding",
            "task": {"labels": ["1", "2", "3", "4", "5"], "ordinal": True},
            "technique": {"kind": "embedding", "head": {"family": "logistic_regression"}},
            "backend": {"provider": "sentence_transformers", "model": "all-MiniLM-L6-v2"},
        },
        source="make serve",
    )


def test_the_bentofile_is_generated_from_pyproject_for_the_example() -> None:
    committed = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    expected = bento_options(ClassifierArtifact(spec=example_spec()), pin=False)
    assert committed == expected, (
        "bentofile.yaml is stale: run `labelwise build yelp-embedding:latest --bentofile bentofile.yaml`"
    )
    assert committed["args"] == {"model": "yelp-embedding:latest"}
    assert "torch==2.13.0" in committed["python"]["packages"]  # the CPU build, as pyproject pins it
