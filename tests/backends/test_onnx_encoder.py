"""``backend.runtime: onnx_int8``: the real all-MiniLM-L6-v2, exported and quantized here, gives
vectors close to torch's; the quantized file is built once; the spec keeps the option where it
applies."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.backends import BackendSpec, Embedder
from labelwise.core import labelwise_home
from labelwise.packaging import ClassifierSpec, technique_for
from tests.conftest import yelp_sample

MINILM = {"provider": "sentence_transformers", "model": "all-MiniLM-L6-v2"}


def test_int8_vectors_stay_close_to_torchs_and_the_model_is_built_once() -> None:
    texts = yelp_sample(24, seed=3)["text"].tolist() + ["", "ok"]
    torch_vectors = Embedder(BackendSpec.model_validate(MINILM)).embed(texts)
    int8 = Embedder(BackendSpec.model_validate({**MINILM, "runtime": "onnx_int8"}))
    int8_vectors = int8.embed(texts)
    cosine = (torch_vectors * int8_vectors).sum(axis=1)  # both unit length
    assert cosine.min() > 0.95 and cosine.mean() > 0.98
    (built,) = (labelwise_home() / "onnx").glob("*-int8.onnx")
    stamp = built.stat().st_mtime_ns
    Embedder(BackendSpec.model_validate({**MINILM, "runtime": "onnx_int8", "max_tokens": 32})).embed(
        texts[:2]
    )
    assert [p.stat().st_mtime_ns for p in (labelwise_home() / "onnx").glob("*")] == [stamp]  # reused
    # A shorter limit changes long texts' vectors, so the embedding cache keeps them apart.
    assert int8.id == "sentence_transformers:all-MiniLM-L6-v2+onnx_int8"
    assert np.allclose(
        Embedder(BackendSpec.model_validate(MINILM)).embed(texts[:1]), torch_vectors[:1], atol=1e-5
    )


def test_runtime_is_refused_where_it_does_not_apply_and_deploys_its_extra() -> None:
    with pytest.raises(ValueError, match="apply to provider sentence_transformers only"):
        BackendSpec.model_validate(
            {"provider": "openai", "model": "text-embedding-3-small", "runtime": "onnx_int8"}
        )
    spec = ClassifierSpec.from_dict(
        {
            "name": "onnx-extras",
            "task": {"labels": ["1", "2"]},
            "technique": {"kind": "embedding", "head": {"family": "logistic_regression"}},
            "backend": {**MINILM, "runtime": "onnx_int8"},
        }
    )
    assert technique_for(spec).serving_extras(spec) == ["embeddings", "onnx"]
