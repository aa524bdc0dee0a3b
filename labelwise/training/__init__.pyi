from ._deploy import DeploymentNeeded
from ._few_labels import contrastive_pairs, train_few_labels
from ._finetune import ExportReport, GapReport, export_finetune, gap_report
from ._head import DEFAULT_FAMILIES, FAMILIES, fit_head
from ._jobs import (
    FileFacts,
    FineTuningClosed,
    JobFollower,
    JobProgress,
    cancel_job,
    provider_client,
    require_success,
    spec_from_job,
    template_base_model,
)
from ._local import Int8Check, LocalFineTuneReport, LocalFineTuneResult, encoder_artifact, finetune_local
from ._local_loop import TrainedEncoder, TrainProgress, base_model_files, pick_device, train_encoder
from ._local_recipe import DEFAULT_BASE_MODEL, LocalRecipe, LocalSplits, split_for_training
from ._provider import (
    Deployment,
    FineTuneResult,
    JobStopped,
    cancel_fine_tuning,
    finetune_import,
    finetune_start,
    follow_job,
    package_job,
)
from ._start import JobRequest, Launch, PreparedData, launch, prepare, request_for
from ._sweep import SweepBoard, SweepOutcome, TrialRow, run_sweep
from ._sweep_spec import SweepSpec
from ._train_embedding import TrainingReport, TrainingResult, train_embedding

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_FAMILIES",
    "Deployment",
    "DeploymentNeeded",
    "ExportReport",
    "FAMILIES",
    "FileFacts",
    "FineTuneResult",
    "FineTuningClosed",
    "GapReport",
    "Int8Check",
    "JobFollower",
    "JobProgress",
    "JobRequest",
    "JobStopped",
    "Launch",
    "LocalFineTuneReport",
    "LocalFineTuneResult",
    "LocalRecipe",
    "LocalSplits",
    "PreparedData",
    "SweepBoard",
    "SweepOutcome",
    "SweepSpec",
    "TrainProgress",
    "TrainedEncoder",
    "TrainingReport",
    "TrainingResult",
    "TrialRow",
    "base_model_files",
    "cancel_fine_tuning",
    "cancel_job",
    "contrastive_pairs",
    "encoder_artifact",
    "export_finetune",
    "finetune_import",
    "finetune_local",
    "finetune_start",
    "fit_head",
    "follow_job",
    "gap_report",
    "launch",
    "package_job",
    "pick_device",
    "prepare",
    "provider_client",
    "request_for",
    "require_success",
    "run_sweep",
    "spec_from_job",
    "split_for_training",
    "template_base_model",
    "train_embedding",
    "train_encoder",
    "train_few_labels",
]
