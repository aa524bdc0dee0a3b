"""An embedding artifact served by a real ``bentoml serve``: the runner batches across workers."""

from __future__ import annotations

import concurrent.futures
import re
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_openai import FakeOpenAIServer
from tests.service.conftest import WORDS, RunningServer, embedding_artifact, keyword_answer, labelwise_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, FakeOpenAIServer, str]]:
    # Each embeddings request takes 0.2 s whatever its size: batching is what keeps up.
    with FakeOpenAIServer(latency_s=0.2) as fake:
        artifact = embedding_artifact(fake.base_url)
        with labelwise_serve(str(artifact.tag), tmp_path_factory.mktemp("serve-embed"), workers=2) as running:
            yield running, fake, str(artifact.tag)


def _histogram(metrics: str, name: str) -> tuple[float, float]:
    """(sum, count) of a histogram over all its label sets."""
    total = {"sum": 0.0, "count": 0.0}
    for line in metrics.splitlines():
        match = re.match(rf"{name}_(sum|count)\{{.*\}} (\S+)$", line)
        if match:
            total[match[1]] += float(match[2])
    return total["sum"], total["count"]


def test_concurrent_requests_are_batched_and_answer_like_the_artifact(
    served: tuple[RunningServer, FakeOpenAIServer, str],
) -> None:
    server, fake, tag = served
    metadata = httpx.post(f"{server.url}/metadata", json={}).json()
    assert (metadata["technique"], metadata["adaptive_batching"]) == ("embedding", True)
    assert metadata["scoring"] == "classifier_head"

    texts = [f"{words[0]} meal number {i}" for i in range(16) for words in WORDS.values()]
    before = fake.requests
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(texts)) as pool:
        responses = list(
            pool.map(lambda t: httpx.post(f"{server.url}/classify", json={"text": t}, timeout=60), texts)
        )
    assert [r.status_code for r in responses] == [200] * len(texts), responses[0].text
    bodies = [r.json() for r in responses]
    # The head learnt the keywords; the served answer is the artifact's, probabilities included.
    assert [b["label"] for b in bodies] == [keyword_answer(t) for t in texts]
    assert all(abs(sum(b["probabilities"].values()) - 1) < 1e-6 for b in bodies)
    assert {b["artifact_tag"] for b in bodies} == {tag}

    # 48 texts reached the embeddings endpoint in far fewer requests than 48: batches were merged.
    embedding_requests = fake.requests - before
    assert embedding_requests < len(texts) / 2, embedding_requests
    metrics = httpx.get(f"{server.url}/metrics").text
    batched, batches = _histogram(metrics, "bentoml_service_adaptive_batch_size")
    assert batched == len(texts) and batches < len(texts), (batched, batches)

    batch = httpx.post(
        f"{server.url}/classify_batch", json={"items": [{"text": "great love"}, {"text": "rude and cold"}]}
    ).json()
    assert [p["label"] for p in batch["predictions"]] == ["positive", "negative"]
    feedback = httpx.post(
        f"{server.url}/feedback", json={"prediction_id": bodies[0]["prediction_id"], "thumbs": "up"}
    )
    assert feedback.status_code == 201


def test_an_embedding_backend_failure_is_a_503_and_logs_nothing(
    served: tuple[RunningServer, FakeOpenAIServer, str],
) -> None:
    server, fake, _ = served

    def logged() -> int:
        with sqlite3.connect(server.db) as db:
            return int(db.execute("SELECT count(*) FROM labelwise_predictions").fetchone()[0])

    before = logged()
    fake.fail_next(503, times=10)  # more than the artifact's retries
    try:
        response = httpx.post(
            f"{server.url}/classify", json={"text": "a text never embedded before"}, timeout=60
        )
    finally:
        fake.clear_failures()
    assert response.status_code == 503
    assert "unavailable" in response.json()["error"]
    assert logged() == before
    # The runner is not broken by it: the next request is answered.
    assert (
        httpx.post(f"{server.url}/classify", json={"text": "great food"}, timeout=60).json()["label"]
        == "positive"
    )
