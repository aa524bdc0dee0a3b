"""Batch scoring against a fake OpenAI-compatible server: dedupe, cache, faults, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelwise.backends import RateLimiter, RateSchedule
from labelwise.batch import ResultCache, score_dataframe
from labelwise.packaging import package
from tests.batch.conftest import answer
from tests.conftest import REPO, fake_server_spec
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise

LABELS = ["negative", "neutral", "positive"]


def _artifact_tag(fake: FakeOpenAIServer, name: str, *, max_retries: int = 1) -> str:
    artifact, _ = package(
        fake_server_spec(name, fake.base_url, template="Sentiment of: {text}", max_retries=max_retries)
    )
    return str(artifact.tag)


def _frame(n: int) -> pd.DataFrame:
    """n rows, n/2 distinct texts, each twice."""
    texts = [f"review {j} was {'bad' if j % 3 else 'good'}" for j in (i % (n // 2) for i in range(n))]
    return pd.DataFrame({"id": range(n), "text": texts})


def test_dedupe_and_cache_save_backend_calls(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _artifact_tag(fake, "batch-dedupe")
    frame = _frame(40)  # 20 distinct texts, each twice
    cache = ResultCache(tmp_path / "cache.sqlite")
    scored = score_dataframe(frame, tag, cache=cache)
    assert fake.requests == 20
    assert scored["id"].tolist() == list(range(40))  # input order and columns kept
    assert (scored["status"] == "ok").all()
    assert scored["label"].tolist() == [answer(t) for t in frame["text"]]
    again = score_dataframe(frame, tag, cache=cache)
    assert fake.requests == 20  # a re-run costs nothing
    assert again["cached"].all() and again["label"].tolist() == scored["label"].tolist()


@pytest.mark.parametrize("form", [list, np.array, pd.Series], ids=["list", "ndarray", "Series"])
def test_python_api_takes_any_text_column(fake: FakeOpenAIServer, form: type) -> None:
    frame = pd.DataFrame({"review": form(["bad food", "lovely"])})
    scored = score_dataframe(frame, _artifact_tag(fake, "batch-forms"), text_col="review")
    assert scored["label"].tolist() == ["negative", "positive"]


def test_faults_keep_every_row_and_the_exit_code_says_so(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _artifact_tag(fake, "batch-faults", max_retries=1)
    path = tmp_path / "in.csv"
    _frame(20).to_csv(path, index=False)
    out = tmp_path / "out.jsonl"
    # 429s and 500s, each twice in a row: the one retry is not enough for those texts.
    fake.fail_next(429, times=2, headers={"retry-after": "0"})
    fake.fail_next(500, times=2)
    result = labelwise(
        "batch", "score", tag, str(path), "--out", str(out), "--concurrency", "1", "--no-cache", "--json",
        check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    # stdout is the JSON report and nothing else; the bar and the failure note are on stderr.
    report = json.loads(result.stdout)
    assert report["rows"] == 20 and report["failed_rows"] >= 2
    assert "20/?" in result.stderr and "rows failed" in result.stderr  # a CSV: no row count before reading
    scored = pd.read_json(out, lines=True)
    assert len(scored) == 20 and scored["id"].tolist() == list(range(20))
    failed = scored[scored["status"] == "error"]
    assert len(failed) >= 2 and failed["reason"].isin(["rate_limited", "backend_unavailable"]).all()
    # The same command again retries only what failed, and succeeds.
    before = fake.requests
    labelwise("batch", "score", tag, str(path), "--out", str(out), "--concurrency", "1", "--no-cache")
    assert (pd.read_json(out, lines=True)["status"] == "ok").all()
    assert not list(tmp_path.glob(".out.jsonl.checkpoint*"))
    assert fake.requests - before == failed["text"].nunique()


def test_timeouts_keep_rows(tmp_path: Path) -> None:
    with FakeOpenAIServer(answer=answer, latency_s=1.0) as slow:
        artifact, _ = package(fake_server_spec("batch-timeouts", slow.base_url, timeout_s=0.2, max_retries=0))
        scored = score_dataframe(pd.DataFrame({"text": ["a bad one", "a good one"]}), str(artifact.tag))
    assert scored["status"].tolist() == ["error", "error"]
    assert (scored["reason"] == "backend_timeout").all()


def test_resume_after_sigkill(tmp_path: Path) -> None:
    rows = 60
    with FakeOpenAIServer(answer=answer, latency_s=0.1) as fake:
        tag = _artifact_tag(fake, "batch-resume")
        frame = pd.DataFrame(
            {
                "id": range(rows),
                "text": [f"text number {i} is {'bad' if i % 2 else 'fine'}" for i in range(rows)],
            }
        )
        path, out = tmp_path / "in.parquet", tmp_path / "out.csv"
        frame.to_parquet(path)
        command = [sys.executable, "-m", "labelwise.cli", "batch", "score", tag, str(path), "--out", str(out),
                   "--concurrency", "2", "--no-cache"]  # fmt: skip
        checkpoint = tmp_path / ".out.csv.checkpoint.sqlite"
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        done = 0
        while done < 15 and time.monotonic() < deadline:
            time.sleep(0.1)
            if checkpoint.exists():
                with sqlite3.connect(checkpoint) as db:
                    try:
                        done = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
                    except sqlite3.OperationalError:
                        done = 0
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert 15 <= done < rows and not out.exists()
        sent_before_kill = fake.requests
        with sqlite3.connect(checkpoint) as db:
            committed = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        resumed = fake.requests - sent_before_kill
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == list(range(rows))  # nothing lost, nothing duplicated
    assert (scored["status"] == "ok").all()
    assert resumed == rows - committed  # finished rows were not scored again
    assert not checkpoint.exists()


def test_rate_schedule_keeps_every_window_under_the_limit() -> None:
    schedule = RateSchedule(requests_per_minute=600, tokens_per_minute=6000)  # 10 requests/s, 100 tokens/s
    sent = [0.0 + schedule.delay(10, now=0.0) for _ in range(100)]  # all ask at once
    # A quarter of a second's worth goes at once, then one request every 0.1 s: never more than
    # 5 % over a 10-second window's allowance.
    assert sum(t < 1e-9 for t in sent) <= 4
    assert all(sum(start <= t < start + 10 for t in sent) <= 105 for start in sent)
    assert sent == sorted(sent)  # in the order they asked
    big = schedule.delay(3000, now=sent[-1])  # 30 s of tokens: it waits for its turn, then books them
    assert big < 1.0 and schedule.delay(1, now=sent[-1]) >= 29
    schedule.hold(120, now=1000.0)  # a Retry-After stops everyone
    assert schedule.delay(1, now=1000.0) == pytest.approx(120)


@pytest.mark.anyio
async def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(requests_per_minute=1200)  # 20 requests/s
    started = time.monotonic()
    for _ in range(26):  # a quarter of a second's worth at once, then 20 a second
        await limiter.acquire(1)
    assert 0.9 <= time.monotonic() - started < 2.0


def test_dry_run_estimates_without_calling(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _artifact_tag(fake, "batch-dry")
    path = tmp_path / "in.csv"
    _frame(10).to_csv(path, index=False)
    import json

    estimate = json.loads(
        labelwise(
            "batch", "score", tag, str(path), "--out", str(tmp_path / "o.csv"), "--dry-run", "--json"
        ).stdout
    )
    assert estimate["rows"] == 10 and estimate["unique_texts"] == 5 and estimate["to_score"] == 5
    assert estimate["estimated_prompt_tokens"] > 0
    assert fake.requests == 0 and not (tmp_path / "o.csv").exists()


def test_bad_input_is_refused_clearly(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _artifact_tag(fake, "batch-bad")
    path = tmp_path / "in.csv"
    pd.DataFrame({"review": ["x"]}).to_csv(path, index=False)
    result = labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "o.csv"), check=False)
    assert result.returncode == 2 and "no column 'text'" in result.stderr and "--text-col" in result.stderr
    result = labelwise(
        "batch", "score", tag, str(path), "--out", str(path), "--text-col", "review", check=False
    )
    assert result.returncode == 2 and "--out must not be the input file" in result.stderr


@pytest.mark.slow
def test_ray_engine_gives_the_local_output(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the 'ray' extra")
    tag = _artifact_tag(fake, "batch-ray")
    path = tmp_path / "in.csv"
    _frame(40).to_csv(path, index=False)
    labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "local.csv"), "--no-cache")
    labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "ray.csv"), "--engine", "ray")
    compared = ["id", "text", "label", "status", "artifact_tag"]
    local = pd.read_csv(tmp_path / "local.csv")[compared]
    on_ray = pd.read_csv(tmp_path / "ray.csv")[compared]
    pd.testing.assert_frame_equal(local, on_ray)


def test_dry_run_counts_openai_tokens_with_tiktoken(tmp_path: Path) -> None:
    import json

    from tests.conftest import EXAMPLES

    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-fine-tuned.yaml"), "--json").stdout)["tag"]
    path = tmp_path / "in.csv"
    pd.DataFrame({"text": ["The food was cold.", "Great tacos!"]}).to_csv(path, index=False)
    estimate = json.loads(
        labelwise(
            "batch", "score", tag, str(path), "--out", str(tmp_path / "o.csv"), "--dry-run", "--json"
        ).stdout
    )
    assert estimate["prompt_tokens_counted_with"] == "tiktoken"
    assert 20 < estimate["estimated_prompt_tokens"] < 80  # two short reviews and the system message
    assert estimate["estimated_cost_usd"] > 0
