"""The service under test: a real artifact served in process, its backend a fake OpenAI server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from labelwise.packaging import HEAD_FILE, ClassifierArtifact, ClassifierSpec, dump_head, package
from tests.conftest import fake_server_spec
from tests.fake_openai import FakeOpenAIServer, bag_of_words
from tests.serve_process import ServeProcess

LABELS = ["negative", "neutral", "positive"]


def keyword_answer(prompt: str) -> str:
    """What the fake model answers: known in advance from words in the text."""
    text = prompt.lower()
    if "rude" in text or "cold" in text:
        return "negative"
    if "great" in text or "love" in text:
        return "positive"
    if "gibberish" in text:
        return "I cannot tell."
    return "neutral"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer=keyword_answer) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_faults(fake_openai: FakeOpenAIServer) -> Iterator[None]:
    yield
    fake_openai.clear_failures()


def served_spec(base_url: str, *, name: str = "svc-sentiment") -> ClassifierSpec:
    prices = {"usd_per_million_prompt_tokens": 0.5, "usd_per_million_completion_tokens": 1.5}
    return fake_server_spec(name, base_url, **prices)


@pytest.fixture(scope="session")
def served_artifact(fake_openai: FakeOpenAIServer) -> ClassifierArtifact:
    artifact, _ = package(served_spec(fake_openai.base_url))
    return artifact


@pytest.fixture(scope="session")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "predictions.db"


@pytest.fixture(scope="session")
def client(served_artifact: ClassifierArtifact, db_path: Path) -> Iterator[object]:
    from starlette.testclient import TestClient

    from labelwise.service import ClassifierService

    os.environ["LABELWISE_MODEL"] = str(served_artifact.tag)
    os.environ["LABELWISE_DB_URL"] = f"sqlite:///{db_path}"
    os.environ["LABELWISE_MAX_TEXT_CHARS"] = "2000"
    # BentoML registers global metric collectors per app: build it once per process.
    with TestClient(ClassifierService.to_asgi()) as test_client:
        yield test_client
    for name in ("LABELWISE_MODEL", "LABELWISE_DB_URL", "LABELWISE_MAX_TEXT_CHARS"):
        os.environ.pop(name, None)


@dataclass(frozen=True)
class RunningServer:
    """A ``labelwise serve`` process with its store and Prometheus files."""

    process: ServeProcess
    db: Path
    prometheus_dir: Path

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def tag(self) -> str:
        return self.process.tag

    def log_tail(self) -> str:
        return self.process.log_tail()


@contextlib.contextmanager
def labelwise_serve(tag: str, home: Path, *, workers: int = 1) -> Iterator[RunningServer]:
    """Run ``labelwise serve TAG`` (a real ``bentoml serve``) until the block ends, then SIGINT it."""
    db = home / "predictions.db"
    # Feedback gauges recomputed on every write, so a test sees each write in /metrics.
    env = {**os.environ, "LABELWISE_METRICS_REFRESH_S": "0"}
    process = ServeProcess(tag, db_url=f"sqlite:///{db}", log=home / "serve.log", workers=workers, env=env)
    prometheus_dir = Path(os.environ["BENTOML_HOME"]) / "prometheus_multiproc_dir"
    with process:
        yield RunningServer(process=process, db=db, prometheus_dir=prometheus_dir)


WORDS = {"negative": ["rude", "cold"], "positive": ["great", "love"], "neutral": ["fine", "okay"]}


def _training_texts() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, words in WORDS.items():
        for i in range(12):
            texts.append(f"{words[i % 2]} {words[(i + 1) % 2]} visit {i}")
            labels.append(label)
    return texts, labels


def embedding_artifact(base_url: str) -> ClassifierArtifact:
    """A head fitted on the fake server's embeddings (bags of words), packaged as train-embedding does."""
    texts, labels = _training_texts()
    head = LogisticRegression(C=10.0).fit(np.array([bag_of_words(t) for t in texts]), labels)
    spec = ClassifierSpec.from_dict(
        {
            "name": "svc-embed",
            "task": {"labels": LABELS},
            "technique": {"kind": "embedding", "head": {"family": "logistic_regression"}},
            "backend": {
                "provider": "openai_compatible", "base_url": base_url, "model": "fake-embed",
                "max_retries": 1, "backoff_initial_s": 0.01, "backoff_max_s": 0.05,
            },
        }
    )  # fmt: skip
    artifact, _ = package(spec, model_files={HEAD_FILE: dump_head(head)})
    return artifact
