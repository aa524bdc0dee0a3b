"""Fine-tuning jobs on the provider, through the openai SDK: upload, create, follow, cancel, and
the provenance of what a job produced.

``start``, ``import`` and ``sweep`` share these, so an artifact made from a job is the same
however the job was launched: its provenance is read from the job, its files and its result
file, never typed in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import hashlib
import io
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai

from ..backends import (
    BACKENDS,
    BackendAuthError,
    BackendBadRequest,
    BackendError,
    BackendSpec,
    OpenAIBackend,
    RateLimited,
    completion_backend,
    translate_provider_errors,
)
from ..core import LabelwiseError
from ..packaging import ClassifierSpec, FineTuneProvenance, Hyperparameters

__all__ = [
    "STOPPED",
    "TERMINAL",
    "FileFacts",
    "FineTuningClosed",
    "JobDialect",
    "JobFollower",
    "JobProgress",
    "cancel_job",
    "create_job",
    "file_facts",
    "find_job",
    "fine_tuned_spec",
    "job_dialect",
    "provider_client",
    "read_result_file",
    "reported_metrics",
    "require_success",
    "spec_from_job",
    "template_base_model",
    "upload_file",
]

TERMINAL = ("succeeded", "failed", "cancelled")
STOPPED = ("paused",)
"""States a job stays in until someone acts (Azure pauses a job on request; it resumes on request)."""
LAUNCH_KEY = "labelwise_launch"
"""The job metadata key that names the launch, so that a job whose id was lost is found again."""
_CREATE_ATTEMPTS = 3
QUEUE_PATIENCE_S = 6 * 3600.0
"""How long a job waits its turn when the provider's job limits refuse it (active jobs, jobs per day)."""
OPENAI_FINE_TUNING_CLOSED = (
    "OpenAI is winding down self-serve fine-tuning: since 2026-05-07 organisations that never "
    "fine-tuned cannot create jobs, since 2026-07-02 neither can those without fine-tuned "
    "inference in the last 60 days, and from 2027-01-06 no one can (inference on existing "
    "fine-tuned models goes on until their base model retires). Two ways on: fine-tune on Azure "
    "OpenAI (backend.provider: azure_openai), or fine-tune without a provider"
)


class FineTuningClosed(LabelwiseError):
    """Raised when the provider no longer lets this account create fine-tuning jobs."""


@dataclass(frozen=True)
class JobDialect:
    """How a provider's fine-tuning API takes a job, as its API version describes it."""

    metadata: bool = True
    """Jobs carry ``metadata`` (and can be listed by it): OpenAI; Azure's API has none."""
    method: bool = True
    """Hyperparameters go inside ``method`` (OpenAI, Azure previews since 2024-12-01); else at
    the top level, as Azure's GA 2024-10-21 takes them."""
    closing: bool = False
    """The provider is ending self-serve fine-tuning: a refusal to create a job says so."""


def job_dialect(backend: BackendSpec) -> JobDialect:
    """The dialect of the spec's provider and API version, as its backend describes it."""
    provider = backend.backend
    if not issubclass(provider, OpenAIBackend):
        return JobDialect()
    return JobDialect(
        metadata=provider.fine_tuning_metadata,
        method=provider.takes_fine_tuning_method(backend.api_version),
        closing=provider.fine_tuning_closing,
    )


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


async def wait_until_processed(
    client: openai.AsyncOpenAI,
    file_ids: list[str | None],
    *,
    provider: str,
    poll_s: float = 5.0,
    timeout_s: float = 3600.0,
) -> None:
    """Wait until the provider has validated uploaded files (Azure refuses a job on a file still
    ``pending`` or ``running``); a file it could not process is an error saying why."""
    deadline = time.monotonic() + timeout_s
    for file_id in filter(None, file_ids):
        while True:
            with translate_provider_errors(provider):
                found = await client.files.retrieve(file_id)
            # Azure's in-progress states; OpenAI's files are usable at once (its status field,
            # deprecated, may stay "uploaded").
            status = getattr(found, "status", None) or "processed"
            if status not in ("pending", "running", "error", "deleted", "deleting"):
                break
            if status not in ("pending", "running"):
                details = getattr(found, "status_details", None) or "no details given"
                raise LabelwiseError(f"{provider} could not process file {file_id}: {status} ({details})")
            if time.monotonic() > deadline:
                raise LabelwiseError(
                    f"file {file_id} is still {status} at {provider} after {timeout_s:.0f} s"
                )
            await asyncio.sleep(min(poll_s, 5.0))


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
    dialect: JobDialect | None = None,
    exclude: frozenset[str] = frozenset(),
    patience_s: float = QUEUE_PATIENCE_S,
    queue_poll_s: float = 15.0,
    on_wait: Callable[[str, float], None] | None = None,
) -> str:
    """Create a supervised job tagged with ``launch_key``, once; unset hyperparameters are left
    to the provider ("auto").

    A retry after a lost reply would make a second job (the first exists, its answer did not
    arrive), so the SDK does not retry here: each failed attempt first looks for the job
    (``find_job``), and tries again only when the provider has none. A refusal by the provider's
    job limits (HTTP 429: too many active jobs, too many jobs today) is not a failure: the job
    waits its turn, asking again every ``queue_poll_s`` (or when the provider says) up to
    ``patience_s``, and tells ``on_wait`` why and for how long.
    """
    dialect = dialect or JobDialect()
    chosen = {k: v for k, v in hyperparameters.model_dump().items() if v is not None}
    settings: dict[str, Any] = {}
    if dialect.method:
        settings["method"] = {"type": "supervised", "supervised": {"hyperparameters": chosen}}
    elif chosen:
        settings["hyperparameters"] = chosen
    if dialect.metadata:
        settings["metadata"] = {LAUNCH_KEY: launch_key}
    once = client.with_options(max_retries=0)
    await wait_until_processed(
        client, [training_file, validation_file], provider=provider, poll_s=queue_poll_s
    )
    deadline = time.monotonic() + patience_s
    attempt = 0
    while True:
        try:
            with translate_provider_errors(provider):
                job = await once.fine_tuning.jobs.create(
                    model=base_model,
                    training_file=training_file,
                    validation_file=validation_file or openai.omit,
                    seed=seed,
                    suffix=suffix or openai.omit,
                    **settings,
                )
            return job.id
        except BackendError as exc:
            if dialect.closing:
                _refuse_closed(exc, provider)
            found = await find_job(
                client, launch_key, provider=provider, dialect=dialect, training_file=training_file,
                base_model=base_model, exclude=exclude,
            )  # fmt: skip
            if found is not None:
                return found
            if isinstance(exc, RateLimited) and time.monotonic() < deadline:
                wait = min(exc.retry_after or queue_poll_s, max(0.0, deadline - time.monotonic()))
                if on_wait is not None:
                    on_wait(str(exc), wait)
                await asyncio.sleep(wait)
                continue
            attempt += 1
            if not exc.retryable or attempt >= _CREATE_ATTEMPTS:
                raise
            await asyncio.sleep(exc.retry_after or 2**attempt)


def _refuse_closed(exc: BackendError, provider: str) -> None:
    """A closing provider's refusal to let the organisation fine-tune, as one clear message."""
    if not isinstance(exc, BackendAuthError | BackendBadRequest):
        return
    text = str(exc).lower()
    refused = isinstance(exc, BackendAuthError) and "http 403" in text  # 401 is a wrong key
    if refused or ("fine-tun" in text and ("not available" in text or "access" in text)):
        raise FineTuningClosed(f"{provider} refused to create the fine-tuning job ({exc}). "
                               f"{OPENAI_FINE_TUNING_CLOSED}") from exc  # fmt: skip


async def find_job(
    client: openai.AsyncOpenAI,
    launch_key: str,
    *,
    provider: str,
    dialect: JobDialect | None = None,
    training_file: str | None = None,
    base_model: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> str | None:
    """The job created with ``launch_key``, among the provider's newest 100 (a job whose id was
    lost is minutes old at most).

    Where jobs carry metadata the provider is asked for the key itself; where they do not
    (Azure), the job is the one on this launch's own training file (uploaded by this launch, so
    no other launch's job uses it) and base model, less the jobs a ``--restart`` replaced.
    """
    dialect = dialect or JobDialect()
    with translate_provider_errors(provider):
        if dialect.metadata:
            page = await client.fine_tuning.jobs.list(limit=100, metadata={LAUNCH_KEY: launch_key})
        else:
            page = await client.fine_tuning.jobs.list(limit=100)
    for job in page.data:
        if job.id in exclude:
            continue
        if dialect.metadata and (job.metadata or {}).get(LAUNCH_KEY) == launch_key:
            return job.id
        if not dialect.metadata and training_file and job.training_file == training_file:
            if base_model is None or job.model == base_model:
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

    page_size = 100
    """Events asked for per page (the most the providers return)."""

    def __init__(self, client: openai.AsyncOpenAI, job_id: str, *, provider: str) -> None:
        self.client, self.provider = client, provider
        self.progress = JobProgress(job_id)
        self._seen: set[str] = set()
        self._oldest_first: bool | None = None
        self._cursor: Any = openai.NOT_GIVEN

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
        """Events not seen before, oldest first, whatever order the provider lists them in.

        OpenAI lists newest first and ``after`` pages towards older ones: read until an event
        already seen. Azure lists oldest first and ``after`` pages towards newer ones: read on
        from the last event seen.
        """
        new: list[Any] = []
        after: Any = self._cursor if self._oldest_first else openai.NOT_GIVEN
        while True:
            page = await self.client.fine_tuning.jobs.list_events(job_id, limit=self.page_size, after=after)
            if self._oldest_first is None and len({e.created_at for e in page.data}) > 1:
                self._oldest_first = page.data[0].created_at < page.data[-1].created_at
            fresh = [event for event in page.data if event.id not in self._seen]
            new += fresh
            if not page.has_more or not page.data:
                break
            if not self._oldest_first and len(fresh) < len(page.data):
                break  # reached the events seen before
            after = page.data[-1].id
        self._seen.update(event.id for event in new)
        new.sort(key=_event_order)
        if new and self._oldest_first:
            self._cursor = new[-1].id
        return new

    async def follow(
        self,
        *,
        poll_s: float,
        on_update: Callable[[JobProgress, list[dict[str, float]]], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> Any:
        """Poll until the job ends or is paused (returns it) or ``stop()`` is true (returns ``None``).

        ``on_update`` sees the progress and the new loss points after each poll.
        """
        while True:
            job, points = await self.poll()
            if on_update is not None:
                on_update(self.progress, points)
            if job.status in TERMINAL or job.status in STOPPED:
                return job
            waited = 0.0
            while waited < poll_s:
                if stop():
                    return None
                await asyncio.sleep(min(0.1, poll_s - waited))
                waited += 0.1


def _event_order(event: Any) -> tuple[int, float]:
    data = event.data if isinstance(getattr(event, "data", None), dict) else {}
    step = data.get("step")
    return int(event.created_at or 0), float(step) if isinstance(step, int | float) else -1.0


_ACCURACY_COLUMNS = (
    "full_valid_mean_token_accuracy",  # the whole validation file, once per epoch (OpenAI)
    "valid_mean_token_accuracy",  # a validation batch (OpenAI)
    "validation_mean_token_accuracy",  # Azure OpenAI's name for it
)


def read_result_file(content: bytes) -> list[dict[str, str]]:
    """The rows of a fine-tuning result file: CSV, or CSV in base64 as providers commonly send it."""
    text = content.decode("utf-8", errors="replace").strip()
    if text and "," not in text.splitlines()[0]:
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return []
    return list(csv.DictReader(io.StringIO(text)))


def reported_metrics(rows: list[dict[str, str]]) -> tuple[dict[str, float], str | None]:
    """The last value of each column (validation cells are blank between evaluations), and the
    step of the last row; ``accuracy`` is the validation token accuracy, the fullest measured."""
    reported: dict[str, float] = {}
    step = None
    for row in rows:
        for key, value in row.items():
            if key and key != "step" and value not in (None, ""):
                try:
                    reported[key.strip()] = float(value)
                except ValueError:
                    continue
        step = row.get("step", step)
    accuracy = next((reported[c] for c in _ACCURACY_COLUMNS if c in reported), None)
    if accuracy is not None:
        # Labelled as ours so the gap report compares it with the accuracy measured on served predictions.
        reported["accuracy"] = accuracy
    return reported, step


async def _result_metrics(client: openai.AsyncOpenAI, job: Any) -> tuple[dict[str, float], str | None]:
    """The metrics the service reports for a finished job: the last values of its result file."""
    if not job.result_files:
        return {}, None
    result_id = job.result_files[0]
    reported, step = reported_metrics(read_result_file((await client.files.content(result_id)).read()))
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
    # "auto" (OpenAI) or -1 (Azure) means the provider chose and did not say what: left unset.
    return Hyperparameters.model_validate(
        {k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool) and v > 0}
    )


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


def fine_tuned_spec(
    spec: ClassifierSpec, model_id: str, provenance: FineTuneProvenance, *, deployment: str | None = None
) -> ClassifierSpec:
    """``spec`` (a fine_tuned spec: how the model is called) serving ``model_id`` from a job,
    through ``deployment`` where the provider calls models through deployments."""
    template_base_model(spec, where=f"spec {spec.name}")
    document = spec.model_dump(mode="json", exclude_none=True)
    document["technique"].update(
        model_id=model_id, provenance=provenance.model_dump(mode="json", exclude_none=True)
    )
    if deployment is not None:
        document["backend"]["deployment"] = deployment
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
    deployment: str | None = None,
) -> ClassifierSpec:
    """The fine_tuned spec of a succeeded job's model, its provenance read from the provider."""
    with translate_provider_errors(spec.backend.provider):
        job = await client.fine_tuning.jobs.retrieve(job_id)
    model_id = require_success(job)
    provenance = await _job_provenance(
        client, job, provider=spec.backend.provider, known_files=known_files,
        usd_per_million_training_tokens=usd_per_million_training_tokens,
    )  # fmt: skip
    return fine_tuned_spec(spec, model_id, provenance, deployment=deployment)
