"""Fine-tuning jobs on the provider, through the openai SDK: upload, create, follow, cancel, and
the provenance of what a job produced.

``start``, ``import`` and ``sweep`` share these, so an artifact made from a job is the same
however the job was launched: its provenance is read from the job, its files and its result
file, never typed in.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai

from ..backends import (
    BACKENDS,
    BackendError,
    BackendSpec,
    OpenAIBackend,
    completion_backend,
    translate_provider_errors,
)
from ..core import LabelwiseError
from ..packaging import ClassifierSpec, FineTuneProvenance, Hyperparameters

__all__ = [
    "TERMINAL",
    "FileFacts",
    "JobFollower",
    "JobProgress",
    "cancel_job",
    "create_job",
    "file_facts",
    "find_job",
    "fine_tuned_spec",
    "provider_client",
    "require_success",
    "spec_from_job",
    "template_base_model",
    "upload_file",
]

TERMINAL = ("succeeded", "failed", "cancelled")
LAUNCH_KEY = "labelwise_launch"
"""The job metadata key that names the launch, so that a job whose id was lost is found again."""
_CREATE_ATTEMPTS = 3
# OpenAI's price of training gpt-4o-mini, per million training tokens, for cost estimates.
DEFAULT_USD_PER_MILLION_TRAINING_TOKENS = 3.0


@asynccontextmanager
async def provider_client(backend: BackendSpec, model: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK client of the spec's provider (OpenAI or Azure OpenAI), with the SDK's retries.

    Job management is a few calls a minute, so the SDK's own retries on 429 and 5xx suffice.
    """
    if not backend.backend.fine_tunes:
        able = " or ".join(name for name, cls in sorted(BACKENDS.items()) if cls.fine_tunes)
        raise LabelwiseError(f"fine-tuning jobs run on provider {able}, not {backend.provider}")
    client = completion_backend(backend, model=model)
    if not isinstance(client, OpenAIBackend):
        raise LabelwiseError(f"provider {backend.provider} runs no fine-tuning jobs through the openai SDK")
    try:
        sdk = await client.sdk_client()
        yield sdk.with_options(max_retries=backend.max_retries)
    finally:
        await client.aclose()


@dataclass(frozen=True)
class FileFacts:
    """What provenance records of a training or validation file."""

    sha256: str | None
    rows: int | None


def file_facts(content: bytes) -> FileFacts:
    return FileFacts(
        sha256=hashlib.sha256(content).hexdigest(),
        rows=sum(1 for line in content.splitlines() if line.strip()),
    )


async def upload_file(client: openai.AsyncOpenAI, path: Path, *, provider: str) -> str:
    with translate_provider_errors(provider):
        uploaded = await client.files.create(file=(path.name, path.read_bytes()), purpose="fine-tune")
    return uploaded.id


async def create_job(
    client: openai.AsyncOpenAI,
    *,
    provider: str,
    launch_key: str,
    base_model: str,
    training_file: str,
    validation_file: str | None,
    hyperparameters: Hyperparameters,
    seed: int,
    suffix: str | None,
) -> str:
    """Create a supervised job tagged with ``launch_key``, once; unset hyperparameters are left
    to the provider ("auto").

    A retry after a lost reply would make a second job (the first exists, its answer did not
    arrive), so the SDK does not retry here: each failed attempt first looks for the job by its
    key, and tries again only when the provider has none.
    """
    chosen = {k: v for k, v in hyperparameters.model_dump().items() if v is not None}
    method: Any = {"type": "supervised", "supervised": {"hyperparameters": chosen}}
    once = client.with_options(max_retries=0)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with translate_provider_errors(provider):
                job = await once.fine_tuning.jobs.create(
                    model=base_model,
                    training_file=training_file,
                    validation_file=validation_file or openai.omit,
                    method=method,
                    seed=seed,
                    suffix=suffix or openai.omit,
                    metadata={LAUNCH_KEY: launch_key},
                )
            return job.id
        except BackendError as exc:
            found = await find_job(client, launch_key, provider=provider)
            if found is not None:
                return found
            if not exc.retryable or attempt == _CREATE_ATTEMPTS - 1:
                raise
            await asyncio.sleep(exc.retry_after or 2**attempt)
    raise AssertionError("unreachable")


async def find_job(client: openai.AsyncOpenAI, launch_key: str, *, provider: str) -> str | None:
    """The job created with ``launch_key``, among the provider's newest 100 (a job whose id was
    lost is minutes old at most)."""
    with translate_provider_errors(provider):
        page = await client.fine_tuning.jobs.list(limit=100)
    for job in page.data:
        if (job.metadata or {}).get(LAUNCH_KEY) == launch_key:
            return job.id
    return None


async def cancel_job(client: openai.AsyncOpenAI, job_id: str, *, provider: str) -> str:
    """Cancel a job that still runs; returns its status afterwards."""
    with translate_provider_errors(provider):
        job = await client.fine_tuning.jobs.retrieve(job_id)
        if job.status in TERMINAL:
            return job.status
        return (await client.fine_tuning.jobs.cancel(job_id)).status


@dataclass
class JobProgress:
    """A job as far as it has got: status, step and the loss curve from its ``metrics`` events."""

    job_id: str
    status: str = "validating_files"
    step: int = 0
    total_steps: int | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def latest(self) -> dict[str, float]:
        return self.curve[-1] if self.curve else {}


class JobFollower:
    """Polls one job and its events, handing each event over once, oldest first."""

    def __init__(self, client: openai.AsyncOpenAI, job_id: str, *, provider: str) -> None:
        self.client, self.provider = client, provider
        self.progress = JobProgress(job_id)
        self._last_event: str | None = None

    async def poll(self) -> tuple[Any, list[dict[str, float]]]:
        """The job now, and the loss points that arrived since the last poll."""
        job_id = self.progress.job_id
        with translate_provider_errors(self.provider):
            job = await self.client.fine_tuning.jobs.retrieve(job_id)
            events = await self._new_events(job_id)
        points = []
        for event in events:
            data = event.data if isinstance(event.data, dict) else None
            if event.type == "metrics" and data and "step" in data:
                point = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
                points.append(point)
                self.progress.step = int(point["step"])
                self.progress.total_steps = int(point.get("total_steps") or 0) or self.progress.total_steps
            elif event.type != "metrics":
                self.progress.messages.append(event.message)
        self.progress.curve += points
        self.progress.status = job.status
        return job, points

    async def _new_events(self, job_id: str) -> list[Any]:
        # Events come newest first and `after` pages towards older ones: read until the last
        # event already seen.
        new: list[Any] = []
        after: Any = openai.NOT_GIVEN
        while True:
            page = await self.client.fine_tuning.jobs.list_events(job_id, limit=100, after=after)
            for event in page.data:
                if event.id == self._last_event:
                    break
                new.append(event)
            else:
                if page.has_more and page.data:
                    after = page.data[-1].id
                    continue
            break
        if new:
            self._last_event = new[0].id
        return new[::-1]

    async def follow(
        self,
        *,
        poll_s: float,
        on_update: Callable[[JobProgress, list[dict[str, float]]], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Any:
        """Poll until the job ends (returns it) or ``stop()`` is true (returns ``None``).

        ``on_update`` sees the progress and the new loss points after each poll.
        """
        while True:
            job, points = await self.poll()
            if on_update is not None:
                on_update(self.progress, points)
            if job.status in TERMINAL:
                return job
            waited = 0.0
            while waited < poll_s:
                if stop():
                    return None
                await asyncio.sleep(min(0.1, poll_s - waited))
                waited += 0.1


async def _result_metrics(client: openai.AsyncOpenAI, job: Any) -> tuple[dict[str, float], str | None]:
    """The metrics the service reports for a finished job: the last row of its result file."""
    if not job.result_files:
        return {}, None
    result_id = job.result_files[0]
    content = (await client.files.content(result_id)).read().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    reported: dict[str, float] = {}
    step = None
    # The last row that has each column (validation is not measured on every step).
    for row in rows:
        for key, value in row.items():
            if key != "step" and value not in (None, ""):
                reported[key] = float(value)
        step = row.get("step", step)
    # A service's validation token accuracy is what it calls accuracy; label it as ours so the
    # gap report compares it with the accuracy measured on served predictions.
    token_accuracy = reported.get("full_valid_mean_token_accuracy", reported.get("valid_mean_token_accuracy"))
    if token_accuracy is not None:
        reported["accuracy"] = token_accuracy
    return reported, f"result file {result_id}, step {step}; accuracy is the validation token accuracy"


async def _facts(
    client: openai.AsyncOpenAI, file_id: str | None, known: Mapping[str, FileFacts]
) -> FileFacts:
    if file_id is None:
        return FileFacts(None, None)
    if file_id in known:
        return known[file_id]
    try:
        return file_facts((await client.files.content(file_id)).read())
    except openai.APIStatusError:
        # OpenAI refuses to return files of purpose fine-tune: then only their ids are known.
        return FileFacts(None, None)


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _hyperparameters(job: Any) -> Hyperparameters:
    chosen = job.hyperparameters
    method = getattr(job, "method", None)
    if method is not None and method.supervised is not None and method.supervised.hyperparameters:
        chosen = method.supervised.hyperparameters
    values = chosen.model_dump() if chosen is not None else {}
    # "auto" means the service chose; a finished job reports the value it chose.
    return Hyperparameters.model_validate({k: v for k, v in values.items() if isinstance(v, int | float)})


async def _job_provenance(
    client: openai.AsyncOpenAI,
    job: Any,
    *,
    provider: str,
    known_files: Mapping[str, FileFacts] | None = None,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
) -> FineTuneProvenance:
    """Everything the job, its files and its result file say about the model it produced.

    ``known_files`` gives the facts of files uploaded from here (no download); others are
    downloaded where the provider allows it.
    """
    known = known_files or {}
    with translate_provider_errors(provider):
        training = await _facts(client, job.training_file, known)
        validation = await _facts(client, job.validation_file, known)
        reported, source = await _result_metrics(client, job)
    tokens = job.trained_tokens
    return FineTuneProvenance(
        base_model=job.model,
        job_id=job.id,
        seed=job.seed,
        training_file_id=job.training_file,
        validation_file_id=job.validation_file,
        training_file_sha256=training.sha256,
        validation_file_sha256=validation.sha256,
        training_rows=training.rows,
        validation_rows=validation.rows,
        hyperparameters=_hyperparameters(job),
        reported_metrics=reported,
        reported_metrics_source=source,
        trained_tokens=tokens,
        estimated_cost_usd=None
        if tokens is None
        else round(tokens * usd_per_million_training_tokens / 1e6, 6),
        created_at=_iso(job.created_at),
        finished_at=_iso(job.finished_at),
    )


def template_base_model(spec: ClassifierSpec, *, where: str) -> str:
    """The base model of a fine_tuned spec used as a template; a clear error for other specs."""
    provenance = spec.technique.job_provenance
    if provenance is None:
        raise LabelwiseError(
            f"{where} is technique {spec.technique.kind}: give a fine_tuned spec (see "
            "examples/yelp-fine-tuned.yaml), whose system, prompt_format, backend and decoding say "
            "how the model is called; its model_id and provenance are filled in from the job"
        )
    return provenance.base_model


def fine_tuned_spec(spec: ClassifierSpec, model_id: str, provenance: FineTuneProvenance) -> ClassifierSpec:
    """``spec`` (a fine_tuned spec: how the model is called) serving ``model_id`` from a job."""
    template_base_model(spec, where=f"spec {spec.name}")
    document = spec.model_dump(mode="json", exclude_none=True)
    document["technique"].update(
        model_id=model_id, provenance=provenance.model_dump(mode="json", exclude_none=True)
    )
    return ClassifierSpec.from_dict(document, source=f"fine-tuning job {provenance.job_id}")


def require_success(job: Any, *, hint: str = "") -> str:
    """The fine-tuned model id of a succeeded job; for any other, an error that says why, then ``hint``."""
    if job.status == "succeeded" and job.fine_tuned_model:
        return str(job.fine_tuned_model)
    reason = job.error.message if job.error and job.error.message else "it produced no model"
    raise LabelwiseError(f"fine-tuning job {job.id} {job.status}: {reason}{hint}")


async def spec_from_job(
    client: openai.AsyncOpenAI,
    job_id: str,
    spec: ClassifierSpec,
    *,
    known_files: Mapping[str, FileFacts] | None = None,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
) -> ClassifierSpec:
    """The fine_tuned spec of a succeeded job's model, its provenance read from the provider."""
    with translate_provider_errors(spec.backend.provider):
        job = await client.fine_tuning.jobs.retrieve(job_id)
    model_id = require_success(job)
    provenance = await _job_provenance(
        client, job, provider=spec.backend.provider, known_files=known_files,
        usd_per_million_training_tokens=usd_per_million_training_tokens,
    )  # fmt: skip
    return fine_tuned_spec(spec, model_id, provenance)
