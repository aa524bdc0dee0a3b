"""``batch score --via batch-api`` against the fake OpenAI server's Batch API: files, batches,
failed lines, an expired batch, Azure's paths, and a job killed while it waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from labelwise.packaging import package
from tests.conftest import REPO, fake_server_spec
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise

KEY_ENV = "LABELWISE_TEST_OPENAI_KEY"


def answer(prompt: str) -> str:
    return "negative" if "bad" in prompt else "positive"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    with FakeOpenAIServer(answer=answer) as server:
        server.batch_api.step_s = 0.1
        yield server


def _openai_tag(fake: FakeOpenAIServer, name: str, **backend: object) -> str:
    options: dict[str, object] = {
        "provider": "openai",
        "api_key_env": KEY_ENV,
        "usd_per_million_prompt_tokens": 2.0,
        "usd_per_million_completion_tokens": 8.0,
        "base_url": fake.base_url,
    }
    spec = fake_server_spec(name, **{**options, **backend})  # type: ignore[arg-type]
    artifact, _ = package(spec)
    return str(artifact.tag)


def _input(tmp_path: Path, n: int = 24) -> Path:
    """n rows: n/2 distinct texts (each twice), one of them empty."""
    texts = [
        "" if j == 0 else f"review {j} was {'bad' if j % 3 else 'good'}"
        for j in (i % (n // 2) for i in range(n))
    ]
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": range(n), "text": texts}).to_csv(path, index=False)
    return path


def _score(
    tag: str, path: Path, out: Path, *extra: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return labelwise("batch", "score", tag, str(path), "--out", str(out), "--via", "batch-api",
                     "--poll-s", "0.05", "--json", *extra, check=check)  # fmt: skip


def test_batch_api_scores_every_row_at_half_the_price(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _openai_tag(fake, "batch-api-half")
    path = _input(tmp_path)
    summary = json.loads(_score(tag, path, tmp_path / "out.csv", "--batch-size", "5", "--no-cache").stdout)
    # 11 distinct non-empty texts in batches of at most 5: 3 files, 3 batches, no live request.
    calls = fake.batch_api.calls
    assert calls["files.create"] == calls["batches.create"] == 3 and fake.requests == 0
    assert sorted(b["request_counts"]["total"] for b in fake.batch_api.batches.values()) == [1, 5, 5]
    scored = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert scored["id"].tolist() == list(range(24))
    assert scored["status"].tolist() == ["empty" if t == "" else "ok" for t in scored["text"]]
    filled = scored[scored["text"] != ""]
    assert filled["label"].tolist() == [answer(t) for t in filled["text"]]
    assert not (tmp_path / ".out.csv.batches.json").exists()  # every batch collected

    live = json.loads(
        labelwise(
            "batch", "score", tag, str(path), "--out", str(tmp_path / "live.csv"), "--no-cache", "--json"
        ).stdout
    )
    assert fake.requests == 11
    assert summary["prompt_tokens"] == live["prompt_tokens"] > 0
    assert summary["cost_usd"] == pytest.approx(live["cost_usd"] / 2)


def test_failed_lines_are_errors_and_the_same_command_sends_only_them(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    tag = _openai_tag(fake, "batch-api-failed-lines")
    path, out = _input(tmp_path), tmp_path / "out.jsonl"
    fake.batch_api.fail_lines(lambda body: "good" in body["messages"][-1]["content"])
    first = _score(tag, path, out, check=False)
    assert first.returncode == 3
    scored = pd.read_json(out, lines=True)
    good = scored["text"].str.contains("good")
    assert (scored.loc[good, "status"] == "error").all()
    assert scored.loc[good, "message"].str.contains("HTTP 500").all()
    assert scored.loc[~good, "status"].value_counts().to_dict() == {"ok": 16, "empty": 2}

    fake.batch_api.fail_lines(lambda body: False)
    _score(tag, path, out)
    last = list(fake.batch_api.batches.values())[-1]
    distinct_good = scored.loc[good, "text"].nunique()
    assert last["request_counts"]["total"] == distinct_good  # the rest came from the cache
    assert (pd.read_json(out, lines=True)["status"].isin(["ok", "empty"])).all()


def test_an_expired_batch_keeps_what_it_finished(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _openai_tag(fake, "batch-api-expired")
    path, out = _input(tmp_path), tmp_path / "out.csv"
    fake.batch_api.expire_next_batch(after_lines=4)
    first = _score(tag, path, out, check=False)
    assert first.returncode == 3
    scored = pd.read_csv(out, keep_default_na=False)
    assert (scored["status"] == "ok").sum() == 8  # 4 distinct texts, each twice
    expired = scored[scored["status"] == "error"]
    assert len(expired) == 14 and expired["message"].str.contains("batch_expired").all()
    _score(tag, path, out)
    assert list(fake.batch_api.batches.values())[-1]["request_counts"]["total"] == 7
    assert pd.read_csv(out, keep_default_na=False)["status"].isin(["ok", "empty"]).all()


def test_a_killed_job_follows_its_batch_instead_of_sending_it_again(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    tag = _openai_tag(fake, "batch-api-resume")
    path, out = _input(tmp_path), tmp_path / "out.csv"
    fake.batch_api.step_s = 2.0  # long enough to kill the job while the batch runs
    state = tmp_path / ".out.csv.batches.json"
    command = [sys.executable, "-m", "labelwise.cli", "batch", "score", tag, str(path), "--out", str(out),
               "--via", "batch-api", "--poll-s", "0.05"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # Killed as soon as the file is recorded: before or after its batch was created.
    (recorded,) = json.loads(state.read_text())["batches"]
    assert recorded["input_file_id"] in fake.files.records and not out.exists()

    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=120)
    assert fake.batch_api.calls["files.create"] == len(fake.batch_api.batches) == 1  # not sent again
    assert pd.read_csv(out, keep_default_na=False)["status"].isin(["ok", "empty"]).all()
    assert not state.exists()


def test_a_lost_reply_to_batch_creation_finds_the_batch_instead_of_paying_twice(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    tag = _openai_tag(fake, "batch-api-lost-reply")
    path, out = _input(tmp_path), tmp_path / "out.csv"
    fake.batch_api.lose_next_create_reply()  # the batch exists; the job hears HTTP 500
    _score(tag, path, out)
    calls = fake.batch_api.calls
    assert calls["batches.create"] == len(fake.batch_api.batches) == 1 and calls["batches.list"] == 1
    assert pd.read_csv(out, keep_default_na=False)["status"].isin(["ok", "empty"]).all()


def test_a_refused_batch_says_why_and_that_resending_would_not_help(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    tag = _openai_tag(fake, "batch-api-refused")
    path, out = _input(tmp_path), tmp_path / "out.csv"
    fake.batch_api.refuse_next_batch("model gpt-test is not available for batch")
    assert _score(tag, path, out, check=False).returncode == 3
    errors = pd.read_csv(out, keep_default_na=False).query("status == 'error'")["message"]
    assert len(errors) == 22
    assert errors.str.contains("not available for batch").all()
    assert errors.str.contains("would fail the same way").all()


def test_azure_global_batch_uses_its_own_paths_and_deployment(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    root = fake.base_url.removesuffix("/v1")
    azure = {"provider": "azure_openai", "base_url": root, "api_version": "2024-10-21"}
    # Azure runs batches only on a Global-Batch deployment: refused before anything is sent.
    untagged = _openai_tag(fake, "batch-api-azure", **azure)
    refused = _score(untagged, _input(tmp_path), tmp_path / "no.csv", check=False)
    assert refused.returncode != 0 and "backend.batch_deployment" in refused.stderr
    assert sum(fake.batch_api.calls.values()) == 0

    fake.batch_api.batch_deployments["gpt-4o-mini-batch"] = "gpt-4o-mini"
    tag = _openai_tag(fake, "batch-api-azure", **azure, batch_deployment="gpt-4o-mini-batch")
    _score(tag, _input(tmp_path), tmp_path / "out.csv")
    (batch,) = fake.batch_api.batches.values()
    assert batch["endpoint"] == "/chat/completions"
    assert {json.loads(line)["body"]["model"] for line in batch["_lines"]} == {"gpt-4o-mini-batch"}
    assert pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["status"].isin(["ok", "empty"]).all()
    # The input and output files are deleted once collected (Azure caps a resource at 500).
    assert set(fake.files.deleted) == {batch["input_file_id"], batch["output_file_id"]}


def test_files_expire_and_are_deleted_once_collected(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    _score(_openai_tag(fake, "batch-api-expiry"), _input(tmp_path), tmp_path / "out.csv")
    (batch,) = fake.batch_api.batches.values()
    assert fake.files.expiry[batch["input_file_id"]] == {
        "anchor": "created_at",
        "seconds": str(7 * 24 * 3600),
    }
    assert set(fake.files.deleted) == {batch["input_file_id"], batch["output_file_id"]}
    assert not fake.files.records  # nothing left behind at the provider


def test_a_batch_over_the_enqueued_token_limit_waits_and_is_sent_again(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake.batch_api.token_limit_next(times=2)
    _score(_openai_tag(fake, "batch-api-token-limit"), _input(tmp_path), tmp_path / "out.csv")
    scored = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert scored["status"].isin(["ok", "empty"]).all()
    statuses = [b["status"] for b in fake.batch_api.batches.values()]
    assert statuses == ["failed", "failed", "completed"]  # the same file, sent until it was taken
    assert len({b["input_file_id"] for b in fake.batch_api.batches.values()}) == 1
    assert fake.batch_api.calls["files.create"] == 1


def test_what_the_batch_api_cannot_score_is_refused_before_anything_is_sent(
    fake: FakeOpenAIServer, tmp_path: Path
) -> None:
    artifact, _ = package(fake_server_spec("batch-api-compatible", fake.base_url))
    path = _input(tmp_path)
    result = _score(str(artifact.tag), path, tmp_path / "out.csv", check=False)
    assert result.returncode == 2 and "provider openai_compatible has no Batch API" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.csv").exists()
    tag = _openai_tag(fake, "batch-api-ray")
    result = _score(tag, path, tmp_path / "out.csv", "--engine", "ray", check=False)
    assert result.returncode == 2 and "leave out --engine ray" in result.stderr
    assert sum(fake.batch_api.calls.values()) == 0


def test_dry_run_prices_both_ways(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    path = _input(tmp_path)
    estimates = {}
    for name, backend in [
        ("batch-api-dry", {}),
        ("batch-api-dry-compatible", {"provider": "openai_compatible"}),
    ]:
        tag = _openai_tag(fake, name, **backend)
        estimates[name] = json.loads(
            labelwise(
                "batch", "score", tag, str(path), "--out", str(tmp_path / "o.csv"), "--dry-run", "--json"
            ).stdout
        )
    openai, compatible = estimates["batch-api-dry"], estimates["batch-api-dry-compatible"]
    assert openai["estimated_batch_api_cost_usd"] == pytest.approx(openai["estimated_cost_usd"] / 2)
    assert openai["estimated_cost_usd"] > 0
    assert compatible["estimated_batch_api_cost_usd"] is None
