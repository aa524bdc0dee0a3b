"""Fine-tuning jobs and files as OpenAI and Azure OpenAI write them today, against the fake in
both modes: result files in base64 with blank cells, events in either order, Azure's states and
missing metadata, hyperparameters where each api-version takes them, job limits, and OpenAI's
end of self-serve fine-tuning."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from labelwise.backends import BackendSpec
from labelwise.packaging import Hyperparameters
from labelwise.training import FineTuningClosed, JobFollower
from labelwise.training._jobs import JobDialect, create_job, job_dialect, read_result_file, reported_metrics
from tests.fake_openai import FakeOpenAIServer


def _dialect(provider: str, api_version: str | None = None) -> JobDialect:
    extra = (
        {"base_url": "https://example.openai.azure.com", "api_version": api_version} if api_version else {}
    )
    return job_dialect(BackendSpec(provider=provider, model="gpt-4o-mini-2024-07-18", **extra))


OPENAI = _dialect("openai")
AZURE_GA = _dialect("azure_openai", "2024-10-21")
AZURE_PREVIEW = _dialect("azure_openai", "2025-04-01-preview")


def test_each_provider_and_api_version_has_its_dialect() -> None:
    assert OPENAI == JobDialect(metadata=True, method=True, closing=True)
    assert AZURE_GA == JobDialect(metadata=False, method=False, closing=False)
    assert AZURE_PREVIEW == JobDialect(metadata=False, method=True, closing=False)


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        server.fine_tuning.step_s = 0.02
        yield server


@pytest.fixture
def lines() -> bytes:
    answer = {"role": "assistant", "content": "5"}
    records = [{"messages": [{"role": "user", "content": f"review {i}"}, answer]} for i in range(40)]
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _client(fake: FakeOpenAIServer, *, azure: str | None = None) -> openai.AsyncOpenAI:
    if azure:
        return openai.AsyncAzureOpenAI(
            azure_endpoint=fake.base_url.removesuffix("/v1"), api_key="k", api_version=azure
        )
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="k")


async def _create(client: openai.AsyncOpenAI, lines: bytes, dialect: JobDialect, **options: Any) -> str:
    uploaded = await client.files.create(file=("train.jsonl", lines), purpose="fine-tune")
    return await create_job(
        client, provider="azure_openai" if not dialect.metadata else "openai",
        launch_key=options.pop("launch_key", "k1"),
        base_model="gpt-4o-mini-2024-07-18", training_file=uploaded.id, validation_file=None,
        hyperparameters=options.pop("hyperparameters", Hyperparameters()), seed=0, suffix=None,
        dialect=dialect,
        **options,
    )  # fmt: skip


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_result_files_in_either_encoding_with_blank_cells_and_both_namings() -> None:
    csv = ("step,train_loss,valid_loss,validation_mean_token_accuracy,full_valid_loss,"
           "full_valid_mean_token_accuracy\n"
           "1,1.2,1.3,0.40,,\n2,1.0,,,,\n3,0.8,0.9,0.61,0.95,0.58\n4,0.7,,,,\n")  # fmt: skip
    for content in (csv.encode(), base64.b64encode(csv.encode())):
        reported, step = reported_metrics(read_result_file(content))
        assert step == "4"
        assert reported["valid_loss"] == 0.9 and reported["train_loss"] == 0.7  # last filled cell of each
        assert reported["accuracy"] == 0.58  # the whole validation file's, before a batch's
    assert read_result_file(b"not base64 and not csv!") == []


@pytest.mark.parametrize("azure", [None, "2025-04-01-preview"])
def test_the_follower_gives_the_events_oldest_first_in_either_listing(
    fake: FakeOpenAIServer, lines: bytes, azure: str | None
) -> None:
    async def follow() -> JobFollower:
        async with _client(fake, azure=azure) as client:
            job_id = await _create(client, lines, AZURE_PREVIEW if azure else OPENAI)
            follower = JobFollower(client, job_id, provider="azure_openai" if azure else "openai")
            follower.page_size = 4  # several pages per poll
            await follower.follow(poll_s=0.01)
            return follower

    follower = _run(follow())
    progress = follower.progress
    if azure:  # Azure's events carry no metrics: the messages, in the order they happened
        steps = [int(m.split()[1].split("/")[0]) for m in progress.messages if m.startswith("Step ")]
        assert steps and steps == sorted(steps) and len(steps) == len(set(steps))
    else:
        steps = [int(point["step"]) for point in progress.curve]
        assert steps == list(range(1, steps[-1] + 1))  # every step once, in order
    assert progress.messages[0] == "Validating training file"
    assert progress.messages[-1].startswith("The job has succeeded")


def test_a_paused_job_is_reported_not_waited_on(fake: FakeOpenAIServer, lines: bytes) -> None:
    fake.fine_tuning.pause_next_job()

    async def follow() -> Any:
        async with _client(fake, azure="2025-04-01-preview") as client:
            job_id = await _create(client, lines, AZURE_PREVIEW)
            return await asyncio.wait_for(
                JobFollower(client, job_id, provider="azure_openai").follow(poll_s=0.01), timeout=30
            )

    assert _run(follow()).status == "paused"


def test_a_job_waits_until_azure_has_processed_its_file(fake: FakeOpenAIServer, lines: bytes) -> None:
    fake.files.processing_s = 0.5  # Azure refuses a job on a file still pending

    async def create() -> str:
        async with _client(fake, azure="2024-10-21") as client:
            return await _create(client, lines, AZURE_GA, queue_poll_s=0.05)

    assert _run(create()) in fake.fine_tuning.jobs
    assert fake.files.calls["files.retrieve"] >= 2 and fake.fine_tuning.calls["fine_tuning.jobs.create"] == 1


def test_a_lost_create_reply_on_azure_is_found_without_metadata(fake: FakeOpenAIServer, lines: bytes) -> None:
    fake.fine_tuning.lose_next_create_reply()

    async def create() -> str:
        async with _client(fake, azure="2024-10-21") as client:
            return await _create(client, lines, AZURE_GA)

    job_id = _run(create())
    assert list(fake.fine_tuning.jobs) == [job_id]  # found, not made twice


@pytest.mark.parametrize(
    ("version", "dialect"), [("2024-10-21", AZURE_GA), ("2025-04-01-preview", AZURE_PREVIEW)]
)
def test_hyperparameters_go_where_the_api_version_takes_them(
    fake: FakeOpenAIServer, lines: bytes, version: str, dialect: JobDialect
) -> None:
    async def create() -> str:
        async with _client(fake, azure=version) as client:
            return await _create(client, lines, dialect, hyperparameters=Hyperparameters(n_epochs=2))

    job = fake.fine_tuning.jobs[_run(create())]
    assert job["hyperparameters"]["n_epochs"] == 2


def test_the_gas_azure_version_refuses_method_and_metadata(fake: FakeOpenAIServer, lines: bytes) -> None:
    """The fake refuses what Azure's GA api-version does not take: labelwise's old request."""

    async def create() -> None:
        async with _client(fake, azure="2024-10-21") as client:
            await _create(client, lines, OPENAI)

    with pytest.raises(Exception, match="metadata|method"):
        _run(create())


def test_a_job_limit_is_waited_out_not_failed(fake: FakeOpenAIServer, lines: bytes) -> None:
    fake.fine_tuning.max_active_jobs = 1
    waits: list[str] = []

    async def two() -> list[str]:
        async with _client(fake) as client:
            first = await _create(client, lines, OPENAI)
            second = await _create(client, lines, OPENAI, queue_poll_s=0.05, launch_key="k2",
                                   on_wait=lambda why, _s: waits.append(why))  # fmt: skip
            return [first, second]

    jobs = _run(two())
    assert len(set(jobs)) == 2 and fake.fine_tuning.peak_running == 1
    assert waits and "maximum of 1 active fine-tuning jobs" in waits[0]


def test_openais_closed_fine_tuning_is_one_clear_message(fake: FakeOpenAIServer, lines: bytes) -> None:
    fake.fine_tuning.refuse_creation = "Fine-tuning is not available for your organization."

    async def create() -> None:
        async with _client(fake) as client:
            await _create(client, lines, OPENAI)

    with pytest.raises(FineTuningClosed) as closed:
        _run(create())
    message = str(closed.value)
    assert "2027-01-06" in message and "Azure OpenAI" in message and "without a provider" in message
    assert fake.fine_tuning.calls["fine_tuning.jobs.create"] == 1  # not retried
