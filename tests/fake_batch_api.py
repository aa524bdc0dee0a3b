"""OpenAI's Batch API as the fake OpenAI server serves it: files, batches and their life cycle.

A batch is validated when created (as the provider validates the input file), then goes
``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed`` over ``step_s`` seconds each,
answering every line with the server's own completion function; a cancelled batch is
``cancelling`` for ``step_s`` before it is ``cancelled``. Scripted faults: lines that fail (HTTP
500 in the error file), a batch that expires part-way (the rest ``batch_expired`` in the error
file), a batch refused at validation, batches refused for the organisation's enqueued-token limit
(``token_limit_next``: ``token_limit_exceeded``, which clears when earlier batches finish), a
batch created whose creator is told the server failed, a batch cancelled on request. ``calls``
counts each API call by name.

Under Azure's root (``/openai``) every line's ``model`` must name a Global-Batch deployment
(``deployments``), as Azure runs batches only there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import Route

from .fake_files import FakeFiles, error_response, jsonl
from .fake_models import Refusal

__all__ = ["FakeBatchAPI"]

Complete = Callable[[str, dict[str, Any]], dict[str, Any]]


class FakeBatchAPI:
    def __init__(
        self, complete: Complete, files: FakeFiles, *, step_s: float = 0.2, batch_deployments: Any = None
    ) -> None:
        self.complete = complete
        self.files = files
        self.calls = files.calls
        self.step_s = step_s
        self.batches: dict[str, dict[str, Any]] = {}
        self.failing_line: Callable[[dict[str, Any]], bool] = lambda body: False
        self._expire_next_after: int | None = None
        self._lose_next_create_reply = False
        self._refuse_next: str | None = None
        self._token_limited = 0
        self.batch_deployments = batch_deployments
        """Azure: ``name -> model`` of the Global-Batch deployments lines may name."""

    def token_limit_next(self, times: int = 1) -> None:
        """The next ``times`` batches fail validation with ``token_limit_exceeded``."""
        self._token_limited = times

    def refuse_next_batch(self, reason: str) -> None:
        """The next batch fails validation with ``reason``, as a file the provider will not run."""
        self._refuse_next = reason

    def lose_next_create_reply(self) -> None:
        """The next batch is created, but its creator is told the server failed (HTTP 500)."""
        self._lose_next_create_reply = True

    def fail_lines(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Lines whose request body matches fail with HTTP 500 (in the error file)."""
        self.failing_line = predicate

    def expire_next_batch(self, *, after_lines: int) -> None:
        """The next batch created expires once ``after_lines`` of its lines are done."""
        self._expire_next_after = after_lines

    # -- routes -----------------------------------------------------------------------------

    def routes(self, root: str) -> list[Any]:
        azure = root == "/openai"

        async def create(request: Any) -> Any:
            return await self._create_batch(request, azure=azure)

        return [
            Route(f"{root}/batches", create, methods=["POST"]),
            Route(f"{root}/batches", self._list_batches, methods=["GET"]),
            Route(f"{root}/batches/{{batch_id}}", self._retrieve_batch),
            Route(f"{root}/batches/{{batch_id}}/cancel", self._cancel_batch, methods=["POST"]),
        ]

    async def _create_batch(self, request: Any, *, azure: bool) -> Any:

        self.calls["batches.create"] += 1
        body = await request.json()
        source = self.files.records.get(body.get("input_file_id", ""))
        if source is None or source["purpose"] != "batch":
            return error_response(404, f"no batch input file {body.get('input_file_id')}")
        if body.get("completion_window") != "24h":
            return error_response(400, "completion_window must be 24h")
        batch_id = f"batch_{len(self.batches) + 1}"
        lines = self.files.contents[source["id"]].decode().splitlines()
        now = time.time()
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": int(now),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"), "_created": now, "_lines": lines,
            "_expire_after": self._expire_next_after, "_refuse": self._refuse_next, "_azure": azure,
            "_token_limited": self._token_limited > 0,
        }  # fmt: skip
        self._expire_next_after = self._refuse_next = None
        self._token_limited = max(0, self._token_limited - 1)
        if self._lose_next_create_reply:
            self._lose_next_create_reply = False
            return error_response(500, "The server had an error while processing your request.")
        return JSONResponse(_public(self.batches[batch_id]))

    async def _list_batches(self, request: Any) -> Any:

        self.calls["batches.list"] += 1
        data = [_public(self._advance(b)) for b in reversed(self.batches.values())]  # newest first
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    async def _retrieve_batch(self, request: Any) -> Any:

        self.calls["batches.retrieve"] += 1
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return error_response(404, f"no batch {request.path_params['batch_id']}")
        return JSONResponse(_public(self._advance(batch)))

    async def _cancel_batch(self, request: Any) -> Any:

        self.calls["batches.cancel"] += 1
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            return error_response(404, f"no batch {request.path_params['batch_id']}")
        if batch["status"] in ("validating", "in_progress"):
            batch.update(status="cancelling", cancelling_at=int(time.time()), _cancelling=time.time())
        return JSONResponse(_public(batch))

    # -- life cycle ---------------------------------------------------------------------------

    def _advance(self, batch: dict[str, Any]) -> dict[str, Any]:
        age = time.time() - batch["_created"]
        if batch["status"] == "cancelling":
            if time.time() - batch["_cancelling"] >= self.step_s:  # cancelling takes a while
                self._finish(batch, "cancelled", done=0)
        elif batch["status"] == "validating" and age >= self.step_s:
            errors = self._validate(batch)
            if errors:
                batch.update(status="failed", errors={"object": "list", "data": errors})
            else:
                batch.update(status="in_progress", in_progress_at=int(time.time()))
        elif batch["status"] == "in_progress":
            if age >= 2 * self.step_s:  # every line answered; the output file is being written
                batch.update(status="finalizing", finalizing_at=int(time.time()))
            else:
                batch["request_counts"]["completed"] = len(batch["_lines"]) // 2
        elif batch["status"] == "finalizing" and age >= 3 * self.step_s:
            expire_after = batch["_expire_after"]
            if expire_after is None:
                self._finish(batch, "completed", done=len(batch["_lines"]))
            else:
                self._finish(batch, "expired", done=expire_after)
        return batch

    def _validate(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """What the provider checks before running a batch: JSON lines, unique ids, one endpoint."""
        errors, seen = [], set()
        for number, line in enumerate(batch["_lines"], start=1):
            try:
                request = json.loads(line)
                custom_id, url, body = request["custom_id"], request["url"], request["body"]
                problem = (
                    "duplicate custom_id" if custom_id in seen
                    else f"url {url} is not the batch's {batch['endpoint']}" if url != batch["endpoint"]
                    else "method must be POST" if request.get("method") != "POST"
                    else "body has no model" if "model" not in body
                    else None
                )  # fmt: skip
                seen.add(custom_id)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"not a request line: {exc!r}"
            if problem:
                errors.append({"code": "invalid_request", "message": problem, "line": number})
        if batch["_refuse"]:
            errors.append({"code": "invalid_request", "message": batch["_refuse"], "line": 1})
        if batch["_azure"] and not errors:
            for number, line in enumerate(batch["_lines"], start=1):
                model = json.loads(line)["body"].get("model")
                if model not in (self.batch_deployments or {}):
                    message = f"The model '{model}' is not a Global Batch deployment of this resource."
                    errors.append({"code": "invalid_request", "line": number, "message": message})
                    break
        if batch["_token_limited"] and not errors:
            message = (
                "Enqueued token limit reached for gpt-4o-mini in organization org-fake. Limit: 90,000 "
                "enqueued tokens. Please try again once some in_progress batches have been completed."
            )
            errors.append({"code": "token_limit_exceeded", "message": message, "line": None})
        return errors

    def _finish(self, batch: dict[str, Any], status: str, *, done: int) -> None:
        output, failed = [], []
        for number, line in enumerate(batch["_lines"]):
            request = json.loads(line)
            custom_id = request["custom_id"]
            if number >= done:
                if status == "expired":
                    error = {"code": "batch_expired", "message": "This request could not be executed "
                             "before the completion window expired."}  # fmt: skip
                    failed.append({"id": f"req_{number}", "custom_id": custom_id, "response": None,
                                   "error": error})  # fmt: skip
                continue
            if self.failing_line(request["body"]):
                error = {"message": "The server had an error", "type": "server_error"}
                response = {"status_code": 500, "request_id": f"req_{number}", "body": {"error": error}}
                failed.append(
                    {"id": f"req_{number}", "custom_id": custom_id, "response": response, "error": None}
                )
                continue
            if batch["_azure"]:  # the line names its Global-Batch deployment; the model answers
                request["body"]["model"] = (self.batch_deployments or {})[request["body"]["model"]]
            try:
                body = self.complete(request["url"], request["body"])
            except Refusal as refusal:  # the model does not take the request: a line error
                response = {
                    "status_code": refusal.status,
                    "request_id": f"req_{number}",
                    "body": refusal.body,
                }
                failed.append(
                    {"id": f"req_{number}", "custom_id": custom_id, "response": response, "error": None}
                )
                continue
            response = {"status_code": 200, "request_id": f"req_{number}", "body": body}
            output.append(
                {"id": f"req_{number}", "custom_id": custom_id, "response": response, "error": None}
            )
        if output:
            batch["output_file_id"] = self.files.add("output.jsonl", jsonl(output), purpose="batch_output")[
                "id"
            ]
        if failed:
            batch["error_file_id"] = self.files.add("errors.jsonl", jsonl(failed), purpose="batch_output")[
                "id"
            ]
        batch["request_counts"].update(completed=len(output), failed=len(failed))
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())


_OPTIONAL = frozenset({"errors", "output_file_id", "error_file_id", "metadata"})


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    # The description makes these optional, not nullable: absent until they exist.
    return {k: v for k, v in batch.items() if not k.startswith("_") and not (k in _OPTIONAL and v is None)}
