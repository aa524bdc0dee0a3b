"""Scoring through OpenAI's Batch API: half the per-request price, results within 24 hours.

The prompts go up as JSONL files within the API's limits (50,000 requests, 200 MB), one batch
each. Each uploaded file is recorded in a state file before its batch is asked for, and the
batch's id as soon as it exists, so a process that dies, or a reply that is lost, resumes with
the same batches rather than paying for the texts twice: a file with no batch id is looked up
among the provider's batches before a batch is created from it.
Results are mapped back to texts by ``custom_id`` (the text's SHA-256) as each batch ends. A
line the provider failed, or one a batch did not reach before it expired or was cancelled,
gives its rows an error; the next run sends only those texts, in a new batch.

A batch refused for the organisation's enqueued-token limit (``token_limit_exceeded``) is not a
failure: the limit clears as earlier batches finish, so the same file is sent again after a wait.
Files are uploaded with an expiry and deleted once their results are collected (Azure caps a
resource at 500 batch files). On Azure every line names the Global-Batch deployment
(``backend.batch_deployment``), the only kind that runs batches.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import openai

from ..backends import (
    BackendError,
    BackendUnavailable,
    OpenAIBackend,
    RetryPolicy,
    call_with_retries,
    error_for_status,
    translate_provider_errors,
)
from ..core import LabelwiseError, text_key
from ..packaging import ClassifierRuntime, Prediction, PromptTechnique

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_REQUESTS", "BatchAPIRunner", "BatchState"]

MAX_BATCH_REQUESTS = 50_000
MAX_BATCH_BYTES = 190 * 2**20  # the API takes 200 MB; a margin for multipart framing
FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})
FILE_EXPIRY_S = 7 * 24 * 3600
"""How long uploaded and output files live at the provider if a run dies before deleting them."""
TOKEN_LIMIT = "token_limit_exceeded"
TOKEN_LIMIT_PATIENCE_S = 24 * 3600.0
"""How long a batch refused for the enqueued-token limit is sent again before giving up."""

T = TypeVar("T")
Result = tuple[int, Prediction | BackendError]


@dataclass(frozen=True)
class SentBatch:
    """One batch a job sent: its id (None until the provider answers), the artifact it scores
    for, its texts' keys, and the uploaded file it is made from."""

    batch_id: str | None
    artifact_tag: str
    keys: list[str]
    input_file_id: str = ""
    uploaded_at: int = 0


class BatchState:
    """The batches sent and not yet collected, in a JSON file replaced atomically on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            document = json.loads(path.read_text()) if path.exists() else {"batches": []}
            self._batches = [SentBatch(**b) for b in document["batches"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LabelwiseError(
                f"{path} is not a batch state file labelwise wrote ({exc}); move it away to start afresh"
            ) from exc

    def sent_for(self, artifact_tag: str) -> list[SentBatch]:
        return [b for b in self._batches if b.artifact_tag == artifact_tag]

    def add(self, batch: SentBatch) -> None:
        self._batches.append(batch)
        self._save()

    def replace(self, old: SentBatch, new: SentBatch) -> None:
        self._batches = [new if b == old else b for b in self._batches]
        self._save()

    def remove(self, batch_id: str) -> None:
        self._batches = [b for b in self._batches if b.batch_id != batch_id]
        self._save()

    def _save(self) -> None:
        if not self._batches:
            self.path.unlink(missing_ok=True)
            return
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"batches": [asdict(b) for b in self._batches]}))
        os.replace(partial, self.path)


def chunks(
    lines: Sequence[tuple[str, bytes]], *, max_requests: int, max_bytes: int
) -> Iterator[list[tuple[str, bytes]]]:
    """``(key, JSONL line)`` pairs split into files within the request and size limits."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for key, line in lines:
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((key, line))
        size += len(line)
    if chunk:
        yield chunk


class BatchAPIRunner:
    """Classify texts with one artifact through the Batch API of its provider.

    ``each(texts)`` is a drop-in for ``ClassifierRuntime.aclassify_each``: it yields
    ``(index, prediction or error)``, here as whole batches finish.
    """

    def __init__(
        self,
        classifier: ClassifierRuntime,
        state_path: Path,
        *,
        poll_s: float = 30.0,
        max_requests: int = MAX_BATCH_REQUESTS,
        max_bytes: int = MAX_BATCH_BYTES,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        technique = classifier.technique_
        spec = classifier.artifact_.spec
        if not isinstance(technique, PromptTechnique):
            raise LabelwiseError(
                f"--via batch-api sends prompts, and technique {spec.technique.kind} sends none; "
                "score it with --via requests"
            )
        backend = technique.backend
        if not isinstance(backend, OpenAIBackend) or backend.batch_price_factor is None:
            raise LabelwiseError(
                f"provider {spec.backend.provider} has no Batch API; --via batch-api needs provider "
                "openai or azure_openai"
            )
        self.technique = technique
        self.backend = backend
        self.price_factor = backend.batch_price_factor
        self.state = BatchState(state_path)
        self.poll_s = poll_s
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.on_status = on_status or (lambda message: None)
        self._policy = RetryPolicy.of(spec.backend)
        self._model = backend.wire_model
        if backend.serves_through_deployments:
            if not spec.backend.batch_deployment:
                raise LabelwiseError(
                    "Azure OpenAI runs batches only on a Global-Batch deployment: set "
                    "backend.batch_deployment to its name (a standard deployment takes no batches)"
                )
            self._model = spec.backend.batch_deployment
        # What files.create and batches.create are asked to expire after (omitted where not taken).
        self._expiry: Any = (
            {"anchor": "created_at", "seconds": FILE_EXPIRY_S}
            if backend.takes_file_expiry(spec.backend.api_version)
            else openai.omit
        )

    @property
    def tag(self) -> str:
        return self.technique.tag

    async def each(self, texts: Sequence[str]) -> AsyncIterator[Result]:
        keys = [text_key(t) for t in texts]
        index = {k: i for i, k in enumerate(keys)}
        for i, text in enumerate(texts):
            if not text.strip():
                yield i, Prediction.of_empty_text(self.tag)
        following = [b for b in self.state.sent_for(self.tag) if any(k in index for k in b.keys)]
        if following:
            ids = ", ".join(b.batch_id or f"the one from {b.input_file_id}" for b in following)
            self.on_status(f"following batch(es) sent by an earlier run: {ids}")
            following = [b if b.batch_id else await self._start(b, fresh=False) for b in following]
        sent = {k for b in following for k in b.keys}
        new = {k: t for k, t in zip(keys, texts, strict=True) if t.strip() and k not in sent}
        if new:
            following += await self._send(new)
        async for key, outcome in self._follow(following):
            if key in index:
                yield index[key], outcome

    @property
    def _url(self) -> str:
        return f"{self.backend.batch_url_prefix}/{self.backend.endpoint}"

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One SDK call, with the artifact's retry policy and labelwise's errors."""
        provider = self.backend.spec.provider

        async def attempt() -> T:
            with translate_provider_errors(provider):
                return await make()

        return await call_with_retries(attempt, self._policy)

    def _lines(self, keys: Iterable[str], requests: Sequence[Any]) -> list[tuple[str, bytes]]:
        lines = []
        for key, request in zip(keys, requests, strict=True):
            body = self.backend.request_body(request)
            body.update(body.pop("extra_body", None) or {}, model=self._model)
            line = {"custom_id": key, "method": "POST", "url": self._url, "body": body}
            lines.append((key, (json.dumps(line, ensure_ascii=False) + "\n").encode()))
        return lines

    async def _send(self, texts: dict[str, str]) -> list[SentBatch]:
        """Send ``texts`` (keyed on ``text_key``) in as many batches as the limits ask."""
        client = await self.backend.sdk_client()
        lines = self._lines(texts, await self.technique.requests(list(texts.values())))
        sent = []
        for number, chunk in enumerate(
            chunks(lines, max_requests=self.max_requests, max_bytes=self.max_bytes)
        ):
            content = b"".join(line for _, line in chunk)
            name = f"labelwise-{self.tag.replace(':', '-')}-{number}.jsonl"
            uploaded = await self._call(
                partial(
                    client.files.create,
                    file=(name, content, "application/jsonl"),
                    purpose="batch",
                    expires_after=self._expiry,
                )  # fmt: skip
            )
            record = SentBatch(None, self.tag, [key for key, _ in chunk], uploaded.id, uploaded.created_at)
            self.state.add(record)  # before the batch exists: a lost reply or a dead process finds it
            started = await self._start(record, fresh=True)
            self.on_status(
                f"sent batch {started.batch_id}: {len(chunk)} requests, {len(content) / 2**20:.1f} MiB"
            )
            sent.append(started)
        return sent

    async def _start(self, record: SentBatch, *, fresh: bool) -> SentBatch:
        """The batch made from the record's file: the provider's own if one exists, else a new one.

        Only the first attempt for a file uploaded by this run skips the lookup: after a lost
        reply or a dead process, a batch may exist that no state file names.
        """
        client = await self.backend.sdk_client()
        attempts = 0

        async def find_or_create() -> Any:
            nonlocal attempts
            attempts += 1
            found = None if fresh and attempts == 1 else await self._made_from(client, record)
            return found or await client.batches.create(
                input_file_id=record.input_file_id,
                endpoint=self._url,  # type: ignore[arg-type]  # Azure's global batch omits /v1
                completion_window="24h",
                metadata={"labelwise_artifact": self.tag},
                output_expires_after=self._expiry,
            )

        batch = await self._call(find_or_create)
        started = replace(record, batch_id=batch.id)
        self.state.replace(record, started)
        return started

    @staticmethod
    async def _made_from(client: Any, record: SentBatch) -> Any | None:
        async for batch in client.batches.list(limit=100):  # newest first
            if batch.input_file_id == record.input_file_id and batch.status != "failed":
                return batch  # a failed batch never ran: the file is sent again
            if batch.created_at < record.uploaded_at:  # older than the file: none further can use it
                return None
        return None

    async def _follow(self, batches: list[SentBatch]) -> AsyncIterator[tuple[str, Prediction | BackendError]]:
        client = await self.backend.sdk_client()
        waiting = {str(b.batch_id): b for b in batches}  # every one started by now
        seen: dict[str, str] = {}
        patience = time.monotonic() + TOKEN_LIMIT_PATIENCE_S
        while waiting:
            for batch_id, record in list(waiting.items()):
                batch = await self._call(partial(client.batches.retrieve, batch_id))
                counts = batch.request_counts
                progress = (
                    f"{batch.status}, {counts.completed + counts.failed}/{counts.total} done"
                    if counts
                    else batch.status
                )
                if seen.get(batch_id) != progress:
                    self.on_status(f"batch {batch_id}: {progress}")
                    seen[batch_id] = progress
                if batch.status == "failed" and _token_limited(batch) and time.monotonic() < patience:
                    # The enqueued-token limit clears as earlier batches finish: send the file again.
                    self.on_status(f"batch {batch_id}: over the enqueued-token limit; sending it again later")
                    await asyncio.sleep(self.poll_s)
                    again = await self._start(replace(record, batch_id=None), fresh=True)
                    del waiting[batch_id]
                    waiting[str(again.batch_id)] = again
                    continue
                if batch.status in FINISHED:
                    for item in await self._collect(batch, record):
                        yield item
                    self.state.remove(batch_id)
                    del waiting[batch_id]
                    await self._delete_files(
                        client, record.input_file_id, batch.output_file_id, batch.error_file_id
                    )
            if waiting:
                await asyncio.sleep(self.poll_s)

    async def _delete_files(self, client: Any, *file_ids: str | None) -> None:
        """Delete a collected batch's files; one that cannot be deleted expires on its own."""
        for file_id in filter(None, file_ids):
            try:
                await self._call(partial(client.files.delete, file_id))
            except BackendError as exc:
                self.on_status(f"file {file_id} was not deleted ({exc}); it expires on its own")

    async def _collect(self, batch: Any, record: SentBatch) -> list[tuple[str, Prediction | BackendError]]:
        client = await self.backend.sdk_client()
        turnaround = float((batch.completed_at or time.time()) - batch.created_at)
        found: dict[str, Prediction | BackendError] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._call(partial(client.files.content, file_id))
                for line in content.text.splitlines():
                    if line.strip():
                        key, outcome = self._outcome(json.loads(line), turnaround)
                        found[key] = outcome
        why = "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
        if batch.status == "failed":  # a file that failed validation would fail again
            reason = (
                f"the provider refused batch {batch.id}'s file ({why or 'no reason given'}); "
                "sending it again would fail the same way"
            )
        else:
            reason = (
                f"batch {batch.id} ended {batch.status} before this text was done"
                + (f" ({why})" if why else "")
                + "; run the same command again to send it in a new batch"
            )
        missing = BackendUnavailable(reason)
        return [(key, found.get(key, missing)) for key in record.keys]

    def _outcome(self, line: dict[str, Any], turnaround_s: float) -> tuple[str, Prediction | BackendError]:
        key = str(line.get("custom_id"))
        if line.get("error"):
            error = line["error"]
            return key, BackendUnavailable(
                f"the batch failed this request: {error.get('code')}: {error.get('message')}"
            )
        response = line.get("response") or {}
        status = int(response.get("status_code") or 0)
        body = response.get("body") or {}
        if status != 200:
            error = body.get("error") if isinstance(body, dict) else None
            message = str((error or {}).get("message", body))
            code = (error or {}).get("code")
            return key, error_for_status(self.backend.spec.provider, status, message, code=code)
        try:
            completion = self.backend.read_completion(body)
            return key, self.technique.prediction(completion, latency_s=turnaround_s)
        except BackendError as exc:
            return key, exc


def _token_limited(batch: Any) -> bool:
    """Whether the batch was refused only for the organisation's enqueued-token limit."""
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    return bool(errors) and all(getattr(error, "code", None) == TOKEN_LIMIT for error in errors)
