"""Thumbs and implicit signals sent at once to a two-worker `labelwise serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from labelwise.packaging import ClassifierArtifact
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow


def _summary(url: str, tag: str) -> dict[str, Any]:
    answer = httpx.post(f"{url}/feedback/summary", json={"bucket": "day", "artifact_tag": tag}, timeout=30)
    return dict(answer.json()["overall"])


def test_signals_and_thumbs_from_many_clients_are_summarised_exactly(
    db_url: str, served_artifact: ClassifierArtifact, tmp_path: Path
) -> None:
    tag = str(served_artifact.tag)
    texts = [f"great visit {i}" for i in range(20)] + [f"rude waiter {i}" for i in range(10)]
    with ServeProcess(tag, db_url=db_url, log=tmp_path / "serve.log", workers=2) as server:
        answered = httpx.post(
            f"{server.url}/classify_batch", json={"items": [{"text": t} for t in texts]}, timeout=60
        )
        assert answered.status_code == 200, server.log_tail()
        ids = [p["prediction_id"] for p in answered.json()["predictions"]]
        positives, negatives = ids[:20], ids[20:]
        # A worker writes its rows just after answering; the other worker finds them once written.
        deadline = time.monotonic() + 10
        while _summary(server.url, tag)["predictions"] < len(texts) and time.monotonic() < deadline:
            time.sleep(0.05)
        override = {"signal": "overridden", "correct_label": "neutral"}
        bodies: list[dict[str, Any]] = (
            [{"prediction_id": i, "thumbs": "up"} for i in positives[:10]]
            + [{"prediction_id": i, **override} for i in negatives[:5]]
            + [{"prediction_id": i, "signal": "clicked", "value": float(n)} for n, i in enumerate(ids[:20])]
            + [{"prediction_id": i, "signal": "accepted"} for i in positives[:10]]
        )  # fmt: skip
        with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(
                pool.map(lambda body: client.post(f"{server.url}/feedback", json=body).status_code, bodies)
            )
        assert statuses == [201] * len(bodies), server.log_tail()

        summary = _summary(server.url, tag)
        assert (summary["predictions"], summary["feedback"], summary["thumbs_up"]) == (30, 10, 10)
        assert (summary["labelled"], summary["accuracy"]) == (15, pytest.approx(10 / 15))
        signals = summary["signals"]
        assert (signals["clicked"]["events"], signals["clicked"]["predictions"]) == (20, 20)
        assert signals["clicked"]["mean_value"] == pytest.approx(9.5)
        assert signals["accepted"]["share"] == pytest.approx(10 / 30)
        assert signals["overridden"]["events"] == 5
        assert sum(point["predictions"] for point in summary["series"]) == 30
        metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
        clicks = [
            line for line in metrics.splitlines() if line.startswith("labelwise_feedback_events_total{")
        ]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in clicks if 'signal="clicked"' in line) == 20

    out = tmp_path / "report.html"
    report = subprocess.run(
        [sys.executable, "-m", "labelwise.cli", "feedback", "report", "--out", str(out), "--db-url", db_url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert f"{tag}: 30 predictions, 10 thumbs, 15 labelled" in report.stdout
    assert json.loads(out.with_suffix(".json").read_text())["by_artifact"][0]["accuracy"] == pytest.approx(
        2 / 3
    )
