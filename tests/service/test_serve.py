"""A real ``bentoml serve`` with two workers, started through ``labelwise serve``."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labelwise.packaging import package
from labelwise.store import PredictionStore
from tests.conftest import REPO
from tests.fake_openai import FakeOpenAIServer
from tests.serve_process import seed_predictions
from tests.service.conftest import RunningServer, keyword_answer, labelwise_serve, served_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with FakeOpenAIServer(answer=keyword_answer, latency_s=0.05) as fake:
        artifact, _ = package(served_spec(fake.base_url, name="svc-two-workers"))
        with labelwise_serve(str(artifact.tag), tmp_path_factory.mktemp("serve"), workers=2) as running:
            yield running


def _per_worker(prometheus_dir: Path, metric: str) -> dict[str, float]:
    """Each worker's own value of a counter, read from its multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    totals: Counter[str] = Counter()
    for path in prometheus_dir.glob("counter_*.db"):
        values = MmapedDict(str(path), read_mode=True)
        try:
            for key, value, _ in values.read_all_values():
                if json.loads(key)[0] == metric:
                    totals[path.stem] += value
        finally:
            values.close()
    return {pid: v for pid, v in totals.items() if v}


def _gauge(client: httpx.Client, series: str) -> float:
    """One series' value in /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} is not in /metrics")


def test_two_workers_classify_feedback_summary_metrics(server: RunningServer, tmp_path: Path) -> None:
    url, db, prometheus_dir = server.url, server.db, server.prometheus_dir
    texts = [f"review {i}: {'great' if i % 3 == 0 else 'cold'} food" for i in range(40)]
    bodies: list[dict[str, object]] = []
    # The kernel hands each new connection to whichever worker accepts first, and /readyz
    # is answered by the first worker up: on a loaded machine the second may still be
    # importing. Send rounds until both have answered, bounded by time, not by rounds.
    deadline = time.monotonic() + 120
    while True:
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(
                pool.map(lambda t: httpx.post(f"{url}/classify", json={"text": t}, timeout=30), texts)
            )
        assert [r.status_code for r in responses] == [200] * len(texts)
        bodies += [r.json() for r in responses]
        if len(_per_worker(prometheus_dir, "labelwise_predictions")) == 2:
            break
        assert time.monotonic() < deadline, "the second worker never answered: " + server.log_tail()
        time.sleep(1)
    assert [b["label"] for b in bodies[: len(texts)]] == [keyword_answer(t) for t in texts]
    sent = len(bodies)

    # Another artifact's feedback in the same store, all wrong: it must not move this one's figures.
    other = seed_predictions(f"sqlite:///{db}", "other-artifact:1", 3)
    store = PredictionStore.from_url(f"sqlite:///{db}")
    for prediction_id in other:
        store.put_feedback(prediction_id, thumbs="down", correct_label="negative", comment=None)
    store.close()
    with httpx.Client(base_url=url, timeout=30) as client:
        wrong = bodies[1]["prediction_id"]  # "cold food" -> negative; say it was neutral
        right = bodies[0]["prediction_id"]
        assert (
            client.post(
                "/feedback", json={"prediction_id": wrong, "thumbs": "down", "correct_label": "neutral"}
            ).status_code
            == 201
        )
        assert client.post("/feedback", json={"prediction_id": right, "thumbs": "up"}).status_code == 201
        assert client.post("/feedback", json={"prediction_id": right, "thumbs": "up"}).status_code == 200

        by_artifact = client.post("/feedback/summary", json={}).json()["by_artifact"]
        (summary,) = [s for s in by_artifact if s["artifact_tag"] == server.tag]
        assert (summary["predictions"], summary["feedback"], summary["labelled"]) == (sent, 2, 2)
        assert summary["accuracy"] == pytest.approx(0.5)
        tag = server.tag
        assert _gauge(client, f'labelwise_online_accuracy{{artifact="{tag}"}}') == pytest.approx(0.5)
        assert _gauge(client, f'labelwise_feedback{{artifact="{tag}",thumbs="down"}}') == 1

        # Replaced feedback counts as its latest thumbs: no prediction is thumbs-down any more.
        assert client.post("/feedback", json={"prediction_id": wrong, "thumbs": "up"}).status_code == 200
        assert _gauge(client, f'labelwise_feedback{{artifact="{tag}",thumbs="down"}}') == 0
        assert _gauge(client, f'labelwise_feedback{{artifact="{tag}",thumbs="up"}}') == 2
        assert _gauge(client, f'labelwise_online_accuracy{{artifact="{tag}"}}') == pytest.approx(1.0)
        metrics = client.get("/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("labelwise_predictions_total{")
    )
    assert served == sent
    per_worker = _per_worker(prometheus_dir, "labelwise_predictions")
    assert len(per_worker) == 2, per_worker  # both workers answered ...
    assert sum(per_worker.values()) == sent  # ... and /metrics is their sum
    writes = [line for line in metrics.splitlines() if line.startswith("labelwise_feedback_writes_total{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in writes) == 4  # every accepted write

    out = tmp_path / "feedback.csv"
    result = subprocess.run(
        [sys.executable, "-m", "labelwise.cli", "feedback", "export", "--out", str(out), "--db-url", f"sqlite:///{db}"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    assert "wrote 5 rows" in result.stdout
    import pandas as pd

    frame = pd.read_csv(out)
    frame = frame[frame["artifact_tag"] == server.tag].sort_values("text")
    assert frame[["label", "predicted_label", "thumbs"]].values.tolist() == [
        ["positive", "positive", "up"],
        ["negative", "negative", "up"],
    ]
    assert frame["text"].tolist() == [texts[0], texts[1]]
