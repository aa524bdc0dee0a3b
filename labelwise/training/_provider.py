"""Fine-tuning on a provider, end to end, as library functions that return one result.

``finetune_start`` prepares the data, launches (or finds) the job, follows it, packages the model
with its provenance, measures it on the held-out test rows, attaches what monitoring needs and
replays the validation file for the reported-versus-measured gap. ``finetune_import`` packages
and measures the model of a job run elsewhere. The ``labelwise finetune`` commands only parse
arguments and print these results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import LabelwiseError, run_sync
from ..evaluation import EvalCard, attach_evaluation, evaluate_file, load_labelled
from ..packaging import Classifier, ClassifierArtifact, ClassifierSpec, Hyperparameters, package
from ._deploy import DeploymentNeeded, deploy_model, deployment_plan
from ._finetune import GapReport, gap_report
from ._jobs import (
    DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
    STOPPED,
    FileFacts,
    JobFollower,
    JobProgress,
    cancel_job,
    job_dialect,
    provider_client,
    require_success,
    spec_from_job,
    template_base_model,
)
from ._start import TEST_FILE, launch, prepare, request_for

__all__ = [
    "Deployment",
    "FineTuneResult",
    "JobStopped",
    "cancel_fine_tuning",
    "finetune_import",
    "finetune_start",
    "follow_job",
    "package_job",
]


class JobStopped(LabelwiseError):
    """Raised when following a job was stopped (``stop()`` said so) before the job ended.

    The job goes on at the provider: ``cancel_fine_tuning`` cancels it, the same call follows it again.
    """

    def __init__(self, job_id: str, provider: str) -> None:
        super().__init__(f"stopped following fine-tuning job {job_id} on {provider}; it goes on")
        self.job_id, self.provider = job_id, provider


@dataclass(frozen=True)
class FineTuneResult:
    """A fine-tuned model packaged, with what measuring it gave."""

    artifact: ClassifierArtifact
    created: bool
    """False when the same model, with the same provenance, was already packaged."""
    job_id: str
    resumed: bool = False
    """The job was one an earlier run of the same request had launched."""
    card: EvalCard | None = None
    gap: GapReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tag": str(self.artifact.tag),
            "created": self.created,
            "job_id": self.job_id,
            "resumed": self.resumed,
            "spec": self.artifact.spec.model_dump(mode="json"),
            "eval_card": None if self.card is None else self.card.model_dump(mode="json"),
            "gap": None if self.gap is None else self.gap.model_dump(mode="json"),
        }


def follow_job(
    spec: ClassifierSpec,
    job_id: str,
    *,
    poll_s: float = 10.0,
    on_update: Callable[[JobProgress, list[dict[str, float]]], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Any:
    """Follow the job to its end and return it; ``JobStopped`` when ``stop()`` turns true first."""

    async def follow() -> Any:
        async with provider_client(spec.backend, spec.model_name) as client:
            follower = JobFollower(client, job_id, provider=spec.backend.provider)
            return await follower.follow(poll_s=poll_s, on_update=on_update, stop=stop or (lambda: False))

    job = run_sync(follow())
    if job is None:
        raise JobStopped(job_id, spec.backend.provider)
    return job


def cancel_fine_tuning(spec: ClassifierSpec, job_id: str) -> str:
    """Cancel a job that still runs; its status afterwards."""

    async def cancel() -> str:
        async with provider_client(spec.backend, spec.model_name) as client:
            return await cancel_job(client, job_id, provider=spec.backend.provider)

    return run_sync(cancel())


def package_job(
    spec: ClassifierSpec,
    job_id: str,
    *,
    known_files: dict[str, FileFacts] | None = None,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
    deployment: Deployment | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[ClassifierArtifact, bool]:
    """Package the model of a succeeded job, its provenance read from the provider; where the
    provider calls models through deployments, through ``deployment`` (made first if asked)."""

    async def read() -> ClassifierSpec:
        async with provider_client(spec.backend, spec.model_name) as client:
            found = await spec_from_job(
                client, job_id, spec, known_files=known_files,
                usd_per_million_training_tokens=usd_per_million_training_tokens,
                deployment=deployment.name if deployment else None,
            )  # fmt: skip
        if deployment is not None and deployment.create:
            plan = deployment_plan(spec.backend, deployment.name, found.model_name)
            await deploy_model(plan, poll_s=deployment.poll_s, on_step=on_step)
        return found

    return package(run_sync(read()))


@dataclass(frozen=True)
class Deployment:
    """The deployment a model is called through: an existing one, or one to make (``create``)."""

    name: str
    create: bool = False
    poll_s: float = 10.0


def require_deployment(spec: ClassifierSpec, deployment: Deployment | None) -> None:
    """Refuse, before anything is spent, a provider that needs a deployment when none is named."""
    if deployment is None and spec.backend.backend.serves_through_deployments:
        raise DeploymentNeeded(
            f"{spec.backend.provider} calls a fine-tuned model only through a deployment: give --deploy NAME "
            "(labelwise makes it) or --deployment NAME (one made already)"
        )


def finetune_start(
    data: Path,
    spec: ClassifierSpec,
    *,
    out: Path | None = None,
    base_model: str | None = None,
    hyperparameters: Hyperparameters | None = None,
    suffix: str | None = None,
    test_share: float = 0.2,
    validation_share: float | None = None,
    text_col: str = "text",
    label_col: str = "label",
    sample: int | None = None,
    seed: int = 0,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
    poll_s: float = 10.0,
    restart: bool = False,
    concurrency: int = 16,
    deployment: Deployment | None = None,
    on_step: Callable[[str], None] | None = None,
    on_job_update: Callable[[JobProgress, list[dict[str, float]]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> FineTuneResult:
    """Fine-tune ``spec`` (a fine_tuned spec, as a template) on ``data`` at its provider.

    Each step is recorded in ``out`` (default ``finetune-NAME``) first, so the same call after an
    interruption follows the same job; ``restart`` launches a new one. ``on_step`` hears each
    stage, ``on_job_update`` each look at the job, ``on_progress`` texts scored.
    """
    say = on_step or (lambda _message: None)
    base = base_model or template_base_model(spec, where=f"spec {spec.name}")
    require_deployment(spec, deployment)
    chosen = hyperparameters or Hyperparameters()
    folder = out or Path(f"finetune-{spec.name}")
    labelled = load_labelled(
        data, text_col=text_col, label_col=label_col, label_set=spec.task.labels, sample=sample, seed=seed
    )
    prepared = prepare(
        labelled, spec, folder, base_model=base, epochs=chosen.n_epochs or 3, test_share=test_share,
        seed=seed, usd_per_million_training_tokens=usd_per_million_training_tokens,
        validation_share=validation_share,
    )  # fmt: skip
    say(
        f"{prepared.export.train.rows} training, {prepared.export.validation.rows} validation and "
        f"{len(prepared.test.texts)} held-out test rows in {folder}"
    )
    request = request_for(prepared, spec, base_model=base, hyperparameters=chosen, seed=seed, suffix=suffix)

    async def start() -> Any:
        async with provider_client(spec.backend, base) as client:
            return await launch(
                client, prepared, request, provider=spec.backend.provider,
                dialect=job_dialect(spec.backend), restart=restart, queue_poll_s=max(poll_s, 1.0),
                on_wait=lambda why, wait_s: say(f"the provider's job limits hold the job back ({why}); "
                                                 f"trying again in {wait_s:.0f} s"),
            )  # fmt: skip

    launched = run_sync(start())
    verb = "resuming" if launched.resumed else "created"
    say(f"{verb} job {launched.job_id} (recorded in {folder / 'job.json'})")
    job = follow_job(spec, launched.job_id, poll_s=poll_s, on_update=on_job_update, stop=stop)
    if job.status in STOPPED:
        raise LabelwiseError(
            f"fine-tuning job {job.id} is {job.status} at {spec.backend.provider}: resume it there, then "
            "run the same command again to follow it to its end (nothing was packaged)"
        )
    require_success(job, hint="; nothing was packaged. Run the command again with --restart for a new job")
    artifact, created = package_job(
        spec, launched.job_id, known_files=launched.known_files,
        usd_per_million_training_tokens=usd_per_million_training_tokens, deployment=deployment, on_step=say,
    )  # fmt: skip
    tag = str(artifact.tag)
    say(f"measuring {tag} on the {len(prepared.test.texts)} held-out test rows")
    measured = evaluate_file(
        tag, folder / TEST_FILE, seed=seed, concurrency=concurrency, on_progress=on_progress
    )
    attach_evaluation(tag, measured.card, measured.data, measured.predictions, source=str(data), seed=seed)
    with Classifier.load(tag, max_concurrency=concurrency) as classifier:
        say("replaying the validation file for the gap report")
        gap = gap_report(
            classifier, prepared.validation_file, reported=artifact.spec.technique.reported_metrics,
            test=measured.data,
        )  # fmt: skip
    (folder / "gap.json").write_text(gap.model_dump_json(indent=2))
    return FineTuneResult(
        artifact=artifact, created=created, job_id=launched.job_id, resumed=launched.resumed,
        card=measured.card, gap=gap,
    )  # fmt: skip


def finetune_import(
    job_id: str,
    spec: ClassifierSpec,
    *,
    test: Path | None = None,
    text_col: str = "text",
    label_col: str = "label",
    sample: int | None = None,
    seed: int = 0,
    usd_per_million_training_tokens: float = DEFAULT_USD_PER_MILLION_TRAINING_TOKENS,
    concurrency: int = 16,
    deployment: Deployment | None = None,
    on_step: Callable[[str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FineTuneResult:
    """Package the model of a succeeded job run elsewhere; with ``test``, measure and attach it."""
    template_base_model(spec, where=f"spec {spec.name}")
    require_deployment(spec, deployment)
    artifact, created = package_job(
        spec, job_id, usd_per_million_training_tokens=usd_per_million_training_tokens,
        deployment=deployment, on_step=on_step,
    )  # fmt: skip
    if test is None:
        return FineTuneResult(artifact=artifact, created=created, job_id=job_id)
    tag = str(artifact.tag)
    measured = evaluate_file(
        tag, test, text_col=text_col, label_col=label_col, sample=sample, seed=seed,
        concurrency=concurrency, on_progress=on_progress,
    )  # fmt: skip
    attach_evaluation(tag, measured.card, measured.data, measured.predictions, source=str(test), seed=seed)
    return FineTuneResult(artifact=artifact, created=created, job_id=job_id, card=measured.card)
