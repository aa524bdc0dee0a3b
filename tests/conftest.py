"""Shared fixtures: an isolated model store, a clean environment and an injectable fake backend."""

from __future__ import annotations

import gc
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

# BentoML reads BENTOML_HOME once, on first use: point it at a throwaway store before any import.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="labelwise-tests-"))
os.environ["BENTOML_HOME"] = str(_SESSION_DIR / "bentoml")
os.environ["LABELWISE_HOME"] = str(_SESSION_DIR / "labelwise")
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_SESSION_DIR / "prometheus"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from labelwise.backends import BackendSpec, Completion, CompletionBackend, CompletionRequest  # noqa: E402
from labelwise.packaging import ClassifierSpec  # noqa: E402
from labelwise.store import PredictionStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
YELP_CSV = REPO / "data" / "yelp-sample.csv"  # holds none of the example prompt's reviews
_PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test() -> Iterator[None]:
    """An unclosed socket or file is reported when it is collected, maybe tests later: collecting
    after each test makes the ResourceWarning fail the test that leaked it."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real provider key or a proxy."""
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


def yelp_sample(n: int, *, seed: int = 0, max_chars: int | None = None) -> pd.DataFrame:
    """A seeded sample of the Yelp reviews."""
    frame = pd.read_csv(YELP_CSV)
    if max_chars is not None:
        frame = frame[frame["text"].str.len() <= max_chars]
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)


def spec_dict(**overrides: object) -> dict[str, object]:
    """A valid zero-shot spec as a dict; keyword arguments replace top-level keys."""
    spec: dict[str, object] = {
        "name": "sentiment",
        "task": {"labels": ["negative", "neutral", "positive"]},
        "technique": {"kind": "zero_shot", "template": "Classify as {labels}.\nText: {text}\nLabel:"},
        "backend": {"provider": "openai", "model": "gpt-4o-mini"},
    }
    spec.update(overrides)
    return spec


class FakeBackend(CompletionBackend):
    """Answers from a queue of completions and records every request (like llm's MockModel)."""

    backend_id = "fake"

    def __init__(self, *, labels: Sequence[str] = ()) -> None:
        super().__init__(BackendSpec(), model="fake-model")
        self.queue: deque[Completion | Exception] = deque()
        self.history: list[CompletionRequest] = []
        self.default_text = labels[0] if labels else ""
        self.in_flight = 0
        self.max_in_flight = 0

    def enqueue(self, *items: Completion | Exception | str) -> None:
        for item in items:
            self.queue.append(Completion(text=item, model=self.model) if isinstance(item, str) else item)

    async def complete(self, request: CompletionRequest) -> Completion:
        import asyncio

        self.history.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # lets concurrent requests overlap
            item = self.queue.popleft() if self.queue else Completion(self.default_text, self.model)
        finally:
            self.in_flight -= 1
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def fake_backend() -> Iterator[FakeBackend]:
    yield FakeBackend(labels=["negative", "neutral", "positive"])


@pytest.fixture
def zero_shot_spec() -> ClassifierSpec:
    return ClassifierSpec.from_dict(spec_dict())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fake_server_spec(
    name: str, base_url: str, *, template: str = "Sentiment ({labels}) of: {text}\nAnswer:", **backend: object
) -> ClassifierSpec:
    """A sentiment classifier on a fake OpenAI-compatible server, with fast retries."""
    return ClassifierSpec.from_dict(
        {
            "name": name,
            "task": {"labels": ["negative", "neutral", "positive"]},
            "technique": {"kind": "zero_shot", "template": template},
            "backend": {
                "provider": "openai_compatible",
                "model": "fake-model",
                "base_url": base_url,
                "max_retries": 1,
                "backoff_initial_s": 0.01,
                "backoff_max_s": 0.05,
                "timeout_s": 5,
                **backend,
            },
        }
    )


POSTGRES_URL = os.environ.get("LABELWISE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL: a SQLite file, then the PostgreSQL server CI starts (its tables dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set LABELWISE_TEST_POSTGRES_URL (.ci/postgres.sh starts one)")
    yield POSTGRES_URL
    from labelwise.store._store import _Base

    store = PredictionStore.from_url(POSTGRES_URL)
    _Base.metadata.drop_all(store.engine)
    store.close()


@pytest.fixture
def store(db_url: str) -> Iterator[PredictionStore]:
    store = PredictionStore.from_url(db_url)
    yield store
    store.close()
