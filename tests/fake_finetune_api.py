"""OpenAI's fine-tuning jobs as the fake OpenAI server serves them, with a real optimum to find.

A job validates its files (chat JSONL, at least 10 lines, the last message the assistant's),
then goes ``validating_files`` -> ``queued`` -> ``running`` -> ``succeeded`` over ``step_s``
seconds each plus ``seconds_per_example`` for each example of each training step (epochs x
batches; a larger batch takes longer, as it does on a real service). While it runs
it reports training and validation loss per step as ``metrics`` events; at each epoch's end a
checkpoint; at the end a result file (CSV of the metrics) and a model id that the server's chat
endpoint then serves.

What the hyperparameters buy is encoded here, so that a sweep has an optimum to find and early
stopping has poor trials to stop: quality is 1 at ``OPTIMUM`` (3 epochs, learning-rate
multiplier 1.0, batch size 8) and falls off with the distance in epochs, log learning rate and
log batch size, plus a per-base-model offset. Validation loss falls with the
epochs done towards ``0.3 + 1.2 (1 - quality)`` and the served model answers the true label (``truth``) with
probability ``0.4 + 0.5 quality``, deterministically per prompt. Scripted faults: a job that
fails while running (``fail_next_job``) or is paused (``pause_next_job``), a lost create reply,
the provider's job limit (``max_active_jobs``: HTTP 429 beyond it) and an organisation no longer
allowed to fine-tune (``refuse_creation``). ``calls`` counts each API call by name.

The result file is written as the providers write it: base64 of a CSV whose validation cells are
blank between evaluations, with ``full_valid_*`` columns filled once per epoch.

Jobs created under Azure's root (``/openai``) take Azure's shapes, from its authoring
specification and fine-tuning articles: states ``pending``/``running``/``paused``; no
``metadata`` (refused) and, in the GA api-version 2024-10-21, no ``method`` (hyperparameters at
the top level); hyperparameters the provider chose read back as ``-1``; events listed oldest
first, without metrics; ``validation_mean_token_accuracy`` for OpenAI's ``valid_mean_token_accuracy``;
fine-tuned model ids such as ``gpt-4o-mini-2024-07-18.ft-<hex>``, callable only once deployed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import Route

from .fake_files import FakeFiles, error_response

__all__ = ["OPTIMUM", "FakeFineTuningAPI"]

OPTIMUM = {"n_epochs": 3, "learning_rate_multiplier": 1.0, "batch_size": 8}
BASE_MODEL_OFFSET = {"gpt-4o-mini-2024-07-18": 0.0, "gpt-4.1-nano-2025-04-14": -0.15}
DEFAULTS = {"n_epochs": 3, "learning_rate_multiplier": 1.8, "batch_size": 4}
RUNNING_STATES = ("validating_files", "queued", "running", "pending")
AZURE_GA_VERSIONS = ("2024-10-21",)
"""Azure api-versions whose job schema has no ``method``."""
EVALUATE_EVERY = 3
"""Steps between validation measurements: the cells between are blank, as in the providers' files."""


class FakeFineTuningAPI:
    def __init__(
        self, files: FakeFiles, *, step_s: float = 0.05, seconds_per_example: float = 0.00125
    ) -> None:
        self.files = files
        self.calls = files.calls
        self.step_s = step_s
        self.seconds_per_example = seconds_per_example
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, tuple[float, list[str]]] = {}  # served model id -> accuracy, labels
        self.truth: Callable[[str], str | None] = lambda prompt: None
        self._fail_next: str | None = None
        self._pause_next = False
        self._lose_next_create_reply = False
        self.max_active_jobs: int | None = None
        """The provider's limit of jobs alive at once; creating one more answers HTTP 429."""
        self.refuse_creation: str | None = None
        """Refuse every new job with HTTP 403 and this message (an organisation no longer allowed)."""
        self.peak_running = 0  # the most jobs alive at once: a provider's quota counts these

    def lose_next_create_reply(self) -> None:
        """The next job is created, but its creator is told the server failed (HTTP 500)."""
        self._lose_next_create_reply = True

    def pause_next_job(self) -> None:
        """The next job created is paused half-way, as Azure pauses a job on request."""
        self._pause_next = True

    def fail_next_job(self, message: str) -> None:
        """The next job created fails half-way through training with ``message``."""
        self._fail_next = message

    @staticmethod
    def quality(base_model: str, hyperparameters: dict[str, Any]) -> float:
        """1 at the optimum, towards 0 away from it (``hyperparameters``: all three, set)."""
        h = hyperparameters
        distance = (
            ((h["n_epochs"] - OPTIMUM["n_epochs"]) / 2) ** 2
            + (math.log(h["learning_rate_multiplier"] / OPTIMUM["learning_rate_multiplier"]) / 0.7) ** 2
            + (math.log2(h["batch_size"] / OPTIMUM["batch_size"]) / 3) ** 2
        )
        return max(0.0, min(1.0, math.exp(-distance) + BASE_MODEL_OFFSET.get(base_model, -0.3)))

    def answer(self, model: str, prompt: str) -> str | None:
        """The served model's answer, or None for a model id this API did not produce."""
        if model not in self.models:
            return None
        accuracy, labels = self.models[model]
        truth = self.truth(prompt)
        if truth is not None and _unit(f"{model}\n{prompt}") < accuracy:
            return truth
        wrong = [label for label in labels if label != truth] or labels
        return wrong[int(_unit(f"wrong\n{model}\n{prompt}") * len(wrong))]

    # -- routes -----------------------------------------------------------------------------

    def routes(self, root: str) -> list[Any]:
        jobs = f"{root}/fine_tuning/jobs"
        azure = root == "/openai"

        async def create(request: Any) -> Any:
            return await self._create(request, azure=azure)

        return [
            Route(jobs, create, methods=["POST"]),
            Route(jobs, self._list, methods=["GET"]),
            Route(f"{jobs}/{{job_id}}", self._retrieve),
            Route(f"{jobs}/{{job_id}}/cancel", self._cancel, methods=["POST"]),
            Route(f"{jobs}/{{job_id}}/events", self._events),
            Route(f"{jobs}/{{job_id}}/checkpoints", self._checkpoints),
        ]

    async def _create(self, request: Any, *, azure: bool) -> Any:

        self.calls["fine_tuning.jobs.create"] += 1
        body = await request.json()
        if self.refuse_creation:
            return error_response(403, self.refuse_creation)
        if azure:
            version = request.query_params.get("api-version", "")
            if "metadata" in body:
                return error_response(400, "Unknown parameter: 'metadata'.", code="invalid_request_error")
            if "method" in body and version in AZURE_GA_VERSIONS:
                return error_response(400, f"Unknown parameter: 'method' in api-version {version}; "
                                      "give hyperparameters at the top level.")  # fmt: skip
        alive = sum(self._advance(job)["status"] in RUNNING_STATES for job in self.jobs.values())
        if self.max_active_jobs is not None and alive >= self.max_active_jobs:
            message = (f"This fine-tune request has been rate-limited. Your organization has reached the "
                       f"maximum of {self.max_active_jobs} active fine-tuning jobs.")  # fmt: skip
            return error_response(429, message, code="rate_limit_exceeded")
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        if method.get("type") != "supervised":
            return error_response(400, f"method type {method.get('type')!r} is not offered here")
        hyperparameters = {
            **DEFAULTS,
            **(body.get("hyperparameters") or {}),
            **(method.get("supervised", {}).get("hyperparameters") or {}),
        }
        hyperparameters = {k: DEFAULTS[k] if v in (None, "auto") else v for k, v in hyperparameters.items()}
        training = self.files.records.get(body.get("training_file", ""))
        if training is None or training["purpose"] != "fine-tune":
            return error_response(400, f"no fine-tune file {body.get('training_file')}", code="invalid_file")
        for file_id in filter(None, (body.get("training_file"), body.get("validation_file"))):
            if not self.files.processed(file_id):
                return error_response(400, f"The file {file_id} is not processed yet; wait until its status "
                                      "is processed.", code="invalidPayload")  # fmt: skip
        job_id = f"ftjob-{len(self.jobs) + 1}"
        self.peak_running = max(self.peak_running, alive + 1)
        asked = {
            **(body.get("hyperparameters") or {}),
            **(method.get("supervised", {}).get("hyperparameters") or {}),
        }
        lines = self.files.contents[training["id"]].decode().splitlines()
        batches = math.ceil(max(len(lines), 1) / hyperparameters["batch_size"])
        self.jobs[job_id] = {
            "id": job_id, "object": "fine_tuning.job", "model": body["model"], "created_at": int(time.time()),
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-fake",
            "result_files": [], "status": "validating_files", "training_file": training["id"],
            "validation_file": body.get("validation_file"), "hyperparameters": hyperparameters,
            "trained_tokens": None, "error": None, "seed": body.get("seed", 0), "estimated_finish": None,
            "integrations": [], "metadata": body.get("metadata"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            "user_provided_suffix": body.get("suffix"),
            "_created": time.monotonic(), "_lines": lines,
            "_total_steps": hyperparameters["n_epochs"] * batches, "_fail": self._fail_next,
            "_pause": self._pause_next, "_azure": azure, "_asked": asked, "_labels": _labels(lines),
            "_quality": self.quality(body["model"], hyperparameters),
        }  # fmt: skip
        self._fail_next, self._pause_next = None, False
        if self._lose_next_create_reply:
            self._lose_next_create_reply = False
            return error_response(500, "The server had an error while processing your request.")
        return JSONResponse(_public(self.jobs[job_id]), status_code=201 if azure else 200)

    async def _list(self, request: Any) -> Any:

        self.calls["fine_tuning.jobs.list"] += 1
        jobs = [_public(self._advance(j)) for j in reversed(self.jobs.values())]  # newest first
        wanted = {
            k[len("metadata[") : -1]: v for k, v in request.query_params.items() if k.startswith("metadata[")
        }
        if wanted:  # OpenAI's server-side filter on metadata
            jobs = [j for j in jobs if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return JSONResponse({"object": "list", "data": jobs, "has_more": False})

    def _job(self, request: Any, call: str) -> dict[str, Any] | None:
        """Count the call; the job the path names, brought up to date, or None."""
        self.calls[call] += 1
        job = self.jobs.get(request.path_params["job_id"])
        return None if job is None else self._advance(job)

    async def _retrieve(self, request: Any) -> Any:
        if (job := self._job(request, "fine_tuning.jobs.retrieve")) is None:
            return _no_job(request)
        return JSONResponse(_public(job))

    async def _cancel(self, request: Any) -> Any:
        if (job := self._job(request, "fine_tuning.jobs.cancel")) is None:
            return _no_job(request)
        if job["status"] not in RUNNING_STATES:
            return error_response(400, f"job {job['id']} is {job['status']}; it cannot be cancelled")
        job.update(status="cancelled", finished_at=int(time.time()), _done_steps=self._steps_done(job))
        return JSONResponse(_public(job))

    async def _events(self, request: Any) -> Any:
        if (job := self._job(request, "fine_tuning.jobs.list_events")) is None:
            return _no_job(request)
        events = self._event_list(job)
        if not job["_azure"]:
            events = events[::-1]  # OpenAI lists newest first, Azure oldest first
        after = request.query_params.get("after")
        if after:
            ids = [e["id"] for e in events]
            events = events[ids.index(after) + 1 :] if after in ids else []
        limit = int(request.query_params.get("limit", 20))
        return JSONResponse({"object": "list", "data": events[:limit], "has_more": len(events) > limit})

    async def _checkpoints(self, request: Any) -> Any:
        if (job := self._job(request, "fine_tuning.jobs.checkpoints.list")) is None:
            return _no_job(request)
        per_epoch = job["_total_steps"] // job["hyperparameters"]["n_epochs"]
        data = [
            {"object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{job['id']}-{step}",
             "created_at": job["created_at"], "fine_tuning_job_id": job["id"], "step_number": step,
             "fine_tuned_model_checkpoint": f"{_model_id(job)}:ckpt-step-{step}",
             "metrics": {"step": step, **self._losses(job, step)}}
            for step in range(per_epoch, self._steps_done(job) + 1, per_epoch)
        ][::-1]  # fmt: skip
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    # -- life cycle ---------------------------------------------------------------------------

    def _steps_done(self, job: dict[str, Any]) -> int:
        if "_done_steps" in job:
            return int(job["_done_steps"])
        running_for = time.monotonic() - job["_created"] - 2 * self.step_s
        step_s = self.seconds_per_example * job["hyperparameters"]["batch_size"]
        return max(0, min(job["_total_steps"], int(running_for / step_s)))

    def _advance(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["status"] not in RUNNING_STATES:
            return job
        age = time.monotonic() - job["_created"]
        problem = _invalid_training_file(job["_lines"])
        if problem and age >= self.step_s:
            error = {"code": "invalid_training_file", "message": problem, "param": "training_file"}
            job.update(status="failed", error=error, finished_at=int(time.time()), _done_steps=0)
        elif age < self.step_s:
            job["status"] = "validating_files"
        elif age < 2 * self.step_s:
            job["status"] = "queued"
        elif job["_pause"] and self._steps_done(job) >= job["_total_steps"] // 2:
            job.update(status="paused", _done_steps=job["_total_steps"] // 2)
        elif job["_fail"] and self._steps_done(job) >= job["_total_steps"] // 2:
            error = {"code": "server_error", "message": job["_fail"], "param": None}
            job.update(status="failed", error=error, finished_at=int(time.time()),
                       _done_steps=job["_total_steps"] // 2)  # fmt: skip
        elif self._steps_done(job) < job["_total_steps"]:
            job["status"] = "running"
        else:
            self._succeed(job)
        return job

    def _succeed(self, job: dict[str, Any]) -> None:
        accuracy = "validation_mean_token_accuracy" if job["_azure"] else "valid_mean_token_accuracy"
        rows = [f"step,train_loss,train_mean_token_accuracy,valid_loss,{accuracy},full_valid_loss,"
                "full_valid_mean_token_accuracy"]  # fmt: skip
        per_epoch = job["_total_steps"] // job["hyperparameters"]["n_epochs"]
        for step in range(1, job["_total_steps"] + 1):
            losses = self._losses(job, step)
            row = [f"{step}", f"{losses['train_loss']:.4f}", f"{losses['train_mean_token_accuracy']:.4f}"]
            measured = step % EVALUATE_EVERY == 0 or step == job["_total_steps"]
            row += (
                [f"{losses['valid_loss']:.4f}", f"{losses['valid_mean_token_accuracy']:.4f}"]
                if measured
                else ["", ""]
            )
            full = step % per_epoch == 0 or step == job["_total_steps"]
            row += (
                [f"{losses['valid_loss']:.4f}", f"{losses['valid_mean_token_accuracy']:.4f}"]
                if full
                else ["", ""]
            )
            rows.append(",".join(row))
        content = base64.b64encode("\n".join(rows).encode())
        result = self.files.add("step_metrics.csv", content, purpose="fine-tune-results")
        model = _model_id(job)
        self.models[model] = (0.4 + 0.5 * job["_quality"], job["_labels"])
        tokens = sum(len(line) // 4 for line in job["_lines"]) * job["hyperparameters"]["n_epochs"]
        job.update(status="succeeded", fine_tuned_model=model, result_files=[result["id"]],
                   trained_tokens=tokens, finished_at=int(time.time()))  # fmt: skip

    def _losses(self, job: dict[str, Any], step: int) -> dict[str, float]:
        # The loss falls with the epochs done, towards a floor set by the quality, so trials
        # compared after equal training (as early stopping does) are ranked by their quality.
        final = 0.3 + 1.2 * (1 - job["_quality"])
        epochs_done = step * job["hyperparameters"]["n_epochs"] / job["_total_steps"]
        valid = (
            final + (2.5 - final) * math.exp(-2 * epochs_done) + 0.02 * (_unit(f"{job['id']}:{step}") - 0.5)
        )
        accuracy = max(0.0, min(1.0, 1 - valid / 2.5))
        return {"train_loss": valid * 0.9, "valid_loss": valid, "train_mean_token_accuracy": accuracy,
                "valid_mean_token_accuracy": accuracy * 0.97}  # fmt: skip

    def _event_list(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """Events oldest first, as far as the job has got."""
        messages = [("message", "Validating training file", None)]
        if job["status"] != "validating_files":
            messages.append(("message", "Fine-tuning job started", None))
        for step in range(1, self._steps_done(job) + 1):
            losses = self._losses(job, step)
            data = {"step": step, "total_steps": job["_total_steps"], **losses}
            text = f"Step {step}/{job['_total_steps']}: training loss={losses['train_loss']:.4f}"
            # Azure's events say what happens, without the numbers (those are in the result file).
            messages.append(("message", text, None) if job["_azure"] else ("metrics", text, data))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            detail = job["error"]["message"] if job["error"] else job["fine_tuned_model"]
            messages.append(("message", f"The job has {job['status']}: {detail}", None))
        events = [
            {"object": "fine_tuning.job.event", "id": f"ftevent-{job['id']}-{n}",
             "created_at": job["created_at"] + n,
             "level": "error" if job["status"] == "failed" and n == len(messages) - 1 else "info",
             "message": text, "type": kind, **({"data": data} if data is not None else {})}
            for n, (kind, text, data) in enumerate(messages)
        ]  # fmt: skip
        return events


def _invalid_training_file(lines: list[str]) -> str | None:
    if len(lines) < 10:
        return f"the training file has {len(lines)} examples; at least 10 are needed"
    for number, line in enumerate(lines, start=1):
        try:
            messages = json.loads(line)["messages"]
            if messages[-1]["role"] != "assistant":
                return f"line {number}: the last message must be the assistant's"
        except (ValueError, KeyError, IndexError, TypeError):
            return f"line {number} is not a chat example"
    return None


def _labels(lines: list[str]) -> list[str]:
    found = set()
    for line in lines:
        try:
            found.add(json.loads(line)["messages"][-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            continue
    return sorted(found)


def _no_job(request: Any) -> Any:
    return error_response(404, f"no fine-tuning job {request.path_params['job_id']}")


def _model_id(job: dict[str, Any]) -> str:
    if job["_azure"]:
        return f"{job['model']}.ft-{hashlib.sha256(job['id'].encode()).hexdigest()[:32]}"
    suffix = job["user_provided_suffix"] or "labelwise"
    return f"ft:{job['model']}:org-fake:{suffix}:{job['id']}"


def _unit(key: str) -> float:
    """A number in [0, 1) fixed by ``key``."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


_AZURE_STATES = {"validating_files": "pending", "queued": "pending"}
_AZURE_ABSENT = ("metadata", "method", "user_provided_suffix", "integrations", "estimated_finish")


def _public(job: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in job.items() if not k.startswith("_")}
    if not job.get("_azure"):
        return public
    # What the provider chose and did not ask for reads back as -1.
    chosen = {k: (v if k in job["_asked"] and job["_asked"][k] not in (None, "auto") else -1)
              for k, v in job["hyperparameters"].items()}  # fmt: skip
    public = {k: v for k, v in public.items() if k not in _AZURE_ABSENT}
    return {**public, "status": _AZURE_STATES.get(job["status"], job["status"]), "hyperparameters": chosen,
            "suffix": job["user_provided_suffix"]}  # fmt: skip
