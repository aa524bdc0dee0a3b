"""The Responsible-AI report's content: every analysis of scored data, with robustness probes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..packaging import ClassifierArtifact, ClassifierRuntime
from ._probes import run_probes
from ._rai import RaiData, calibration_analysis, cohort_metrics, error_analysis

__all__ = ["rai_report"]


def rai_report(
    data: RaiData,
    *,
    probes: int = 100,
    seed: int = 0,
    min_group_size: int = 30,
    n_boot: int = 100,
    factory: Callable[[ClassifierArtifact], ClassifierRuntime] | None = None,
) -> dict[str, Any]:
    """Overall metrics, cohorts, error analysis, calibration and (with the artifact) robustness."""
    cohorts = [
        cohort_metrics(data, c, min_group_size=min_group_size, n_boot=n_boot, random_state=seed)
        for c in data.cohorts.columns
    ]
    robustness: dict[str, Any] = {"probes": [], "note": None}
    if data.artifact is None:
        robustness["note"] = "robustness probes need the classifier in the model store: pass --model TAG"
    elif probes > 0:
        results = run_probes(
            data.artifact,
            data.texts,
            data.truth,
            sample=probes,
            seed=seed,
            classifier_factory=factory,
        )
        robustness["probes"] = [r.as_dict() for r in results]
    return {
        "data": data.name,
        "artifact_tag": data.artifact_tag,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": data.labels,
        "left_out": data.left_out,
        "overall": data.overall(random_state=seed),
        "cohort_source": data.cohort_source,
        "min_group_size": min_group_size,
        "cohorts": cohorts,
        "errors": error_analysis(data, cohorts, random_state=seed),
        "calibration": calibration_analysis(data),
        "robustness": robustness,
        "warnings": [c["warning"] for c in cohorts if "warning" in c],
    }
