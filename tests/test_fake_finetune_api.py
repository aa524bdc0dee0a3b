"""The fake fine-tuning API behaves as the openai SDK expects, and encodes a real optimum.

The fine-tuning commands are tested against this fake, so its own contract is pinned here:
the job life cycle, events, checkpoints and result file through the SDK's own types, the
served model's accuracy rising towards the optimum, and the scripted faults.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.fake_finetune_api import OPTIMUM
from tests.fake_openai import FakeOpenAIServer

LABELS = ("negative", "positive")


def _truth(prompt: str) -> str:
    return "negative" if "bad" in prompt else "positive"


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.fine_tuning.truth = _truth
        yield server


@pytest.fixture
def client(fake: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    # Closed here, not left to the garbage collector: the SDK's client and its resources refer
    # to each other, so its sockets would otherwise close at some later collection, with a
    # ResourceWarning charged to whichever test runs then.
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test-not-a-real-key", max_retries=0) as client:
        yield client


def _upload(client: openai.OpenAI, n: int) -> str:
    lines = [
        {"messages": [{"role": "user", "content": f"review {i} was {'bad' if i % 2 else 'good'}"},
                      {"role": "assistant", "content": LABELS[(i + 1) % 2]}]}
        for i in range(n)
    ]  # fmt: skip
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("train.jsonl", io.BytesIO(content)), purpose="fine-tune").id


def _job(client: openai.OpenAI, training_file: str, **hyperparameters: Any) -> Any:
    return client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18",
        training_file=training_file,
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        seed=0,
        suffix="yelp",
    )


def _wait(client: openai.OpenAI, job_id: str) -> Any:
    deadline = time.monotonic() + 30
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, job.status
        time.sleep(0.02)
    return job


def _accuracy(client: openai.OpenAI, model: str) -> float:
    prompts = [f"held-out review {i} was {'bad' if i % 3 else 'good'}" for i in range(80)]
    answers = [
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": p}])
        .choices[0]
        .message.content
        for p in prompts
    ]
    return sum(a == _truth(p) for a, p in zip(answers, prompts, strict=True)) / len(prompts)


def test_a_job_runs_to_a_served_model_with_events_checkpoints_and_results(
    fake: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    job = _job(client, _upload(client, 40), **OPTIMUM)
    assert job.status == "validating_files" and job.fine_tuned_model is None
    job = _wait(client, job.id)
    assert job.status == "succeeded"
    assert job.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:org-fake:yelp:{job.id}"
    assert job.hyperparameters.n_epochs == 3 and job.trained_tokens

    total = 3 * 5  # epochs x ceil(40 rows / batch size 8)
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=7))  # pages, newest first
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert steps == list(range(total, 0, -1))
    assert events[0].message.startswith("The job has succeeded")
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [15, 10, 5]
    (result_file,) = job.result_files
    # Base64 of a CSV, validation measured every few steps and on the whole file once an epoch.
    rows = base64.b64decode(client.files.content(result_file).text).decode().splitlines()
    assert rows[0].startswith("step,train_loss") and len(rows) == total + 1
    losses = [float(row.split(",")[3]) for row in rows[1:] if row.split(",")[3]]
    assert 1 < len(losses) < total and losses[-1] < losses[0] / 3  # validation loss falls
    assert sum(1 for row in rows[1:] if row.split(",")[5]) == 3  # full_valid_loss once per epoch

    assert _accuracy(client, job.fine_tuned_model) > 0.85
    calls = fake.fine_tuning.calls
    assert calls["files.create"] == calls["fine_tuning.jobs.create"] == 1


def test_quality_peaks_at_the_optimum(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    training_file = _upload(client, 40)
    good = _wait(client, _job(client, training_file, **OPTIMUM).id)
    poor = _wait(
        client, _job(client, training_file, n_epochs=1, learning_rate_multiplier=0.1, batch_size=1).id
    )
    assert _accuracy(client, good.fine_tuned_model) - _accuracy(client, poor.fine_tuned_model) > 0.2

    def last_loss(job: Any) -> float:
        rows = base64.b64decode(client.files.content(job.result_files[0]).text).decode().splitlines()
        return float(rows[-1].split(",")[3])

    assert last_loss(poor) > last_loss(good) + 0.5


def test_cancel_bad_files_and_a_failing_job(fake: FakeOpenAIServer, client: openai.OpenAI) -> None:
    fake.fine_tuning.seconds_per_example = 0.2  # long enough to cancel while it runs
    running = _job(client, _upload(client, 40), **OPTIMUM)
    assert client.fine_tuning.jobs.cancel(running.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
        client.fine_tuning.jobs.cancel(running.id)

    fake.fine_tuning.seconds_per_example = 0.00125
    too_small = _wait(client, _job(client, _upload(client, 5)).id)
    assert too_small.status == "failed" and too_small.error.code == "invalid_training_file"

    fake.fine_tuning.fail_next_job("the trainer ran out of memory")
    failed = _wait(client, _job(client, _upload(client, 40), **OPTIMUM).id)
    assert failed.status == "failed" and "out of memory" in failed.error.message
    steps = [e.data["step"] for e in client.fine_tuning.jobs.list_events(failed.id, limit=100) if e.data]
    assert max(steps) == 7  # half of 15
