"""The provider canary's one verdict: is the live backend still the classifier that was packaged?

``labelwise canary``, the service's gauges and the Prometheus alert rule all read this verdict:
the service exports ``alarm`` as ``labelwise_canary_alarm``, and the alert pages on it, so the
command on-call runs says what the page said.

Replaying the golden set (``packaging.replay_golden_set``) gives agreement with the packaged
labels. An alarm needs evidence beyond the golden set's sampling noise, as drift checks do: the
agreement's whole 95% Wilson interval below ``min_agreement``, or the label distribution changed
by the drift checks' own rules (chi-square with an effect floor, PSI, Jensen-Shannon above the
noise of random splits). A new ``system_fingerprint`` is reported; it raises the alarm only when
asked, since providers change it for routine deployments too.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..core import DEFAULT_MIN_AGREEMENT
from ._drift import categorical_drift
from ._golden import CanaryRun

__all__ = ["canary_gauges", "canary_verdict"]


def canary_verdict(
    run: CanaryRun, *, min_agreement: float = DEFAULT_MIN_AGREEMENT, fail_on_fingerprint: bool = False
) -> dict[str, Any]:
    """The run with its checks and ``alarm``; ``reasons`` says what raised it."""
    checks = categorical_drift(run.packaged_labels, run.live_labels)
    reasons = []
    if run.agreement_high < min_agreement:
        reasons.append(
            f"agreement {run.agreement:.3f} [{run.agreement_low:.3f}, {run.agreement_high:.3f}] is below "
            f"{min_agreement:g} beyond the noise of {run.items} golden texts"
        )
    reasons += [
        f"label distribution changed: {c.test} {c.statistic:.3g} ({c.rule})" for c in checks if c.drifted
    ]
    if run.fingerprint_changed:
        note = (
            f"system_fingerprint changed: packaged {', '.join(run.packaged_fingerprints) or 'none'}, "
            f"now {', '.join(run.system_fingerprints)}"
        )
        reasons.append(note if fail_on_fingerprint else f"(notice) {note}")
    alarm = any(not reason.startswith("(notice)") for reason in reasons)
    return {
        **run.model_dump(),
        "min_agreement": min_agreement,
        "label_checks": [asdict(c) for c in checks],
        "alarm": alarm,
        "reasons": reasons,
    }


def canary_gauges(verdict: dict[str, Any]) -> dict[str, float]:
    """The verdict as the service's gauge values (``labelwise_canary_<name>``)."""
    return {
        "agreement": verdict["agreement"],
        "agreement_high": verdict["agreement_high"],
        "alarm": 1.0 if verdict["alarm"] else 0.0,
        "fingerprint_changed": 1.0 if verdict["fingerprint_changed"] else 0.0,
    }
