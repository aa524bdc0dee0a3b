"""``finetune start``: labelled data to a running fine-tuning job, resumable at every step.

The data is split once, seeded: test rows that training never sees (for the eval card and
the gap report), then training and validation files rendered with the spec's own prompt.
Each step is recorded in ``job.json`` in the output folder before the next begins (the
uploaded files, then the job id), so a command killed anywhere resumes the same job: no
second upload, no second job, no second bill.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openai
import pandas as pd
from pydantic import BaseModel, ValidationError

from ..core import LabelwiseError, write_atomic, write_frame
from ..evaluation import LabelledData, split_labelled
from ..packaging import ClassifierSpec, Hyperparameters
from ._finetune import ExportReport, export_finetune
from ._jobs import FileFacts, JobDialect, create_job, find_job, upload_file

__all__ = ["JobRequest", "Launch", "PreparedData", "launch", "prepare", "request_for"]

STATE_FILE = "job.json"
TEST_FILE = "test.csv"
TRAINING_FILE = "train.chat.jsonl"
VALIDATION_FILE = "validation.chat.jsonl"


@dataclass(frozen=True)
class PreparedData:
    out: Path
    export: ExportReport
    test: LabelledData

    @property
    def training_file(self) -> Path:
        return self.out / TRAINING_FILE

    @property
    def validation_file(self) -> Path:
        return self.out / VALIDATION_FILE

    def facts(self) -> tuple[FileFacts, FileFacts]:
        """The training and validation files' hashes and rows, as the export wrote them."""
        train, validation = self.export.train, self.export.validation
        return (
            FileFacts(train.sha256[TRAINING_FILE], train.rows),
            FileFacts(validation.sha256[VALIDATION_FILE], validation.rows),
        )


def prepare(
    data: LabelledData,
    spec: ClassifierSpec,
    out: Path,
    *,
    base_model: str,
    epochs: int,
    test_share: float,
    seed: int,
    usd_per_million_training_tokens: float,
    validation_share: float | None = None,
) -> PreparedData:
    """Hold out the test rows, and write the training and validation files (``finetune export``)."""
    rest, test = split_labelled(data, test_size=test_share, seed=seed)
    export = export_finetune(
        rest, spec, out, model=base_model, epochs=epochs,
        usd_per_million_training_tokens=usd_per_million_training_tokens, seed=seed,
        validation_share=validation_share,
    )  # fmt: skip
    write_frame(pd.DataFrame({"text": test.texts, "label": test.labels}), out / TEST_FILE)
    return PreparedData(out=out, export=export, test=test)


class JobRequest(BaseModel):
    """What the job is asked to do: a recorded job is resumed only for the same request."""

    spec: str
    base_model: str
    hyperparameters: Hyperparameters
    seed: int
    suffix: str | None
    training_sha256: str
    validation_sha256: str


class _State(BaseModel):
    request: JobRequest
    training_file_id: str | None = None
    validation_file_id: str | None = None
    job_id: str | None = None
    replaced_jobs: list[str] = []


@dataclass(frozen=True)
class Launch:
    job_id: str
    resumed: bool
    known_files: dict[str, FileFacts]


def request_for(
    prepared: PreparedData,
    spec: ClassifierSpec,
    *,
    base_model: str,
    hyperparameters: Hyperparameters,
    seed: int,
    suffix: str | None = None,
) -> JobRequest:
    export = prepared.export
    return JobRequest(
        spec=spec.name,
        base_model=base_model,
        hyperparameters=hyperparameters,
        seed=seed,
        suffix=suffix,
        training_sha256=export.train.sha256[TRAINING_FILE],
        validation_sha256=export.validation.sha256[VALIDATION_FILE],
    )


def _read_state(path: Path) -> _State | None:
    if not path.exists():
        return None
    try:
        return _State.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as exc:
        raise LabelwiseError(f"{path} is not a labelwise fine-tuning state file ({exc}); remove it") from None


def _write_state(path: Path, state: _State) -> None:
    write_atomic(path, state.model_dump_json(indent=2).encode())


async def launch(
    client: openai.AsyncOpenAI,
    prepared: PreparedData,
    request: JobRequest,
    *,
    provider: str,
    dialect: JobDialect | None = None,
    restart: bool = False,
    queue_poll_s: float = 15.0,
    on_wait: Callable[[str, float], None] | None = None,
) -> Launch:
    """Upload the files and create the job, or find the job an earlier run of this request made.

    ``restart`` makes a new job even when one is recorded (after a failed or cancelled one).
    """
    path = prepared.out / STATE_FILE
    state = _read_state(path)
    if state is not None and state.request != request:
        raise LabelwiseError(
            f"{path} records job {state.job_id or '(not yet created)'} for another request (other data, "
            "spec, base model, hyperparameters or seed): give another --out, or remove the folder"
        )
    if state is not None and restart and state.job_id:
        state.replaced_jobs.append(state.job_id)
        state.job_id = None
        _write_state(path, state)
    training, validation = prepared.facts()
    files = {
        "training_file_id": (prepared.training_file, training),
        "validation_file_id": (prepared.validation_file, validation),
    }
    # The recorded files hold the same bytes as ours: the request's hashes say so.
    known = {
        getattr(state, attribute): facts
        for attribute, (_, facts) in files.items()
        if state is not None and getattr(state, attribute)
    }
    if state is not None and state.job_id:
        return Launch(state.job_id, resumed=True, known_files=known)
    resumed_files = state is not None and state.training_file_id is not None
    state = state or _State(request=request)
    for attribute, (file, facts) in files.items():
        if getattr(state, attribute) is None:
            setattr(state, attribute, await upload_file(client, file, provider=provider))
            known[getattr(state, attribute)] = facts
            _write_state(path, state)
    assert state.training_file_id is not None
    # Each launch of this request (a --restart is another) has its own key.
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:16]
    key = f"start {digest}/{len(state.replaced_jobs)}"
    replaced = frozenset(state.replaced_jobs)
    if resumed_files:
        found = await find_job(
            client, key, provider=provider, dialect=dialect, training_file=state.training_file_id,
            base_model=request.base_model, exclude=replaced,
        )  # fmt: skip
        if found is not None:
            state.job_id = found
            _write_state(path, state)
            return Launch(found, resumed=True, known_files=known)
    state.job_id = await create_job(
        client,
        provider=provider,
        launch_key=key,
        base_model=request.base_model,
        training_file=state.training_file_id,
        validation_file=state.validation_file_id,
        hyperparameters=request.hyperparameters,
        seed=request.seed,
        suffix=request.suffix,
        dialect=dialect,
        exclude=replaced,
        queue_poll_s=queue_poll_s,
        on_wait=on_wait,
    )
    _write_state(path, state)
    return Launch(state.job_id, resumed=False, known_files=known)
