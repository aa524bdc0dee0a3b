"""Watching the served classifier in the background: estimated accuracy and the provider canary.

One worker runs it (each would compute the same from the shared store, and the canary calls the
provider). Every refresh estimates accuracy from the artifact's latest predictions in the store;
every ``LABELWISE_CANARY_INTERVAL_S`` the golden set is replayed against the live backend. The
results are gauges; Prometheus alert rules decide what is an alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..backends import BackendError
from ..core import Settings
from ..monitoring import (
    AccuracyEstimate,
    AccuracyEstimator,
    CanaryRun,
    GoldenSet,
    canary_gauges,
    canary_verdict,
    estimate_accuracy,
    replay_golden_set,
)
from ..packaging import ClassifierArtifact, ClassifierRuntime, technique_for
from ..store import PredictionStore
from . import _metrics as metrics

__all__ = ["Monitor"]

logger = logging.getLogger("bentoml.labelwise")
_MIN_PERIOD_S = 1.0


class Monitor:
    """The served artifact's estimated accuracy and canary, refreshed in a background task."""

    def __init__(self, artifact: ClassifierArtifact, store: PredictionStore, settings: Settings) -> None:
        self.artifact = artifact
        self.tag = str(artifact.tag)
        self.store = store
        self.settings = settings
        # The canary's own classifier, without the embedding cache (it would hide a provider's
        # change), made on its first run; the local model server is shared within the process.
        self._canary_classifier: ClassifierRuntime | None = None
        self.estimator = AccuracyEstimator.attached_to(artifact)
        self.uncalibrated_because = technique_for(artifact.spec).uncalibrated_because(artifact.spec)
        self.golden = GoldenSet.attached_to(artifact)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.estimator is not None:
            metrics.REFERENCE_ACCURACY.labels(self.tag).set(self.estimator.reference_accuracy)
        trusted = self.estimator is not None or self.uncalibrated_because is None
        metrics.ESTIMATE_TRUSTED.labels(self.tag).set(1.0 if trusted else 0.0)
        if not trusted:
            logger.warning(
                "labelwise_estimated_accuracy of %s is not to be trusted: %s, and no accuracy estimator "
                "was fitted (package it with --eval DATA)",
                self.tag,
                self.uncalibrated_because,
            )
        if self.settings.canary_interval_s > 0 and self.golden is None:
            logger.warning(
                "LABELWISE_CANARY_INTERVAL_S is set but %s has no golden set: package it with --eval DATA",
                self.tag,
            )
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._canary_classifier is not None:
            await self._canary_classifier.aclose()

    async def _loop(self) -> None:
        period = max(self.settings.metrics_refresh_s, _MIN_PERIOD_S)
        canary_every = self.settings.canary_interval_s
        next_canary = time.monotonic() if canary_every > 0 and self.golden is not None else float("inf")
        while True:
            try:
                await self.refresh_estimate()
                if time.monotonic() >= next_canary:
                    next_canary = time.monotonic() + canary_every
                    await self.run_canary()
            except Exception:  # noqa: BLE001 (the monitor must outlive any one failure)
                logger.exception("labelwise monitor: a refresh failed")
            await asyncio.sleep(period)

    async def estimate(self, window: int) -> AccuracyEstimate:
        """Accuracy and per-label precision estimated on the artifact's latest ``window`` predictions."""
        rows = await asyncio.to_thread(self.store.recent_confidences, self.tag, limit=window)
        return estimate_accuracy(
            [label for label, _ in rows],
            [confidence for _, confidence in rows],
            estimator=self.estimator,
            uncalibrated_because=self.uncalibrated_because,
        )

    async def refresh_estimate(self) -> AccuracyEstimate:
        estimate = await self.estimate(self.settings.estimate_window)
        if estimate.value is not None and estimate.low is not None:
            metrics.ESTIMATED_ACCURACY.labels(self.tag).set(estimate.value)
            metrics.ESTIMATED_ACCURACY_LOW.labels(self.tag).set(estimate.low)
        return estimate

    async def run_canary(self) -> CanaryRun | None:
        if self.golden is None:
            return None
        if self._canary_classifier is None:
            self._canary_classifier = ClassifierRuntime(artifact=self.artifact, use_cache=False)
        try:
            run = await replay_golden_set(self.golden, self._canary_classifier.aclassify, tag=self.tag)
        except BackendError as exc:
            metrics.CANARY_FAILURES.labels(self.tag).inc()
            logger.warning("labelwise canary: the backend failed: %s", exc)
            return None
        verdict = canary_verdict(run, min_agreement=self.settings.canary_min_agreement)
        gauges = canary_gauges(verdict)
        metrics.CANARY_AGREEMENT.labels(self.tag).set(gauges["agreement"])
        metrics.CANARY_AGREEMENT_HIGH.labels(self.tag).set(gauges["agreement_high"])
        metrics.CANARY_ALARM.labels(self.tag).set(gauges["alarm"])
        metrics.CANARY_FINGERPRINT_CHANGED.labels(self.tag).set(gauges["fingerprint_changed"])
        metrics.CANARY_LAST_RUN.labels(self.tag).set(time.time())
        return run
