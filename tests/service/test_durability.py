"""Acknowledged feedback survives: concurrent writes all land, and so do they across a SIGKILL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labelwise.packaging import ClassifierArtifact
from tests.serve_process import ServeProcess, seed_predictions, send_feedback, stored_feedback

pytestmark = pytest.mark.slow


def test_concurrent_feedback_all_lands_and_survives_a_sigkill(
    db_url: str, served_artifact: ClassifierArtifact, tmp_path: Path
) -> None:
    tag = str(served_artifact.tag)
    steady, crashed = seed_predictions(db_url, tag, 2000), seed_predictions(db_url, tag, 3000)
    server = ServeProcess(tag, db_url=db_url, log=tmp_path / "serve.log", workers=2)
    with server:
        acknowledged, failures = send_feedback(server.url, steady, concurrency=64)
        assert (len(acknowledged), failures) == (len(steady), 0), server.log_tail()
        # Repeats update the record: still exactly one per prediction (the table's key).
        assert send_feedback(server.url, steady[:200], concurrency=32)[1] == 0
        assert stored_feedback(db_url, steady) == set(steady)

        # Kill every server process once a few hundred writes are acknowledged, others in flight.
        killer = threading.Thread(target=server.kill)

        def kill_midway(count: int) -> None:
            if count == 300:
                killer.start()

        acknowledged, failures = send_feedback(
            server.url, crashed, concurrency=64, on_acknowledged=kill_midway
        )
        killer.join()
    assert failures > 0, "the kill came after the load had ended"
    with ServeProcess(tag, db_url=db_url, log=tmp_path / "restart.log"):  # the store opens after the crash
        stored = stored_feedback(db_url, crashed)
    assert len(acknowledged) >= 300
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged writes were lost"
