"""One canary verdict: the alert rule pages exactly when `labelwise canary` says alarm.

The same golden-set figures go through ``canary_verdict`` (what the command prints and exits on)
and ``canary_gauges`` (what the service exports), and promtool evaluates the real alert rule on
those gauge values.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labelwise.core import DEFAULT_MIN_AGREEMENT, wilson_interval
from labelwise.monitoring import CanaryRun, canary_gauges, canary_verdict
from tests.conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"

# (golden texts, agreed): 94 of 100 is below 0.95 but within the noise of 100 texts.
FIGURES = [(100, 100), (100, 98), (100, 94), (100, 88), (100, 70), (400, 372)]


def golden_run(items: int, agreed: int) -> CanaryRun:
    """A replay where ``agreed`` of ``items`` texts kept their label; the label mix stays the same."""
    packaged = ["positive", "negative"] * (items // 2)
    live = list(packaged)
    # Swap labels in pairs, so the distribution of labels is unchanged: only agreement moves.
    for i in range(0, items - agreed, 2):
        live[i], live[i + 1] = live[i + 1], live[i]
    if (items - agreed) % 2:
        live[items - 1] = "positive" if live[items - 1] == "negative" else "negative"
    low, high = wilson_interval(agreed, items) or (0.0, 1.0)
    return CanaryRun(
        artifact_tag="clf:1",
        ran_at="2026-12-07T00:00:00+00:00",
        items=items,
        agreed=agreed,
        agreement=agreed / items,
        agreement_low=low,
        agreement_high=high,
        packaged_labels=packaged,
        live_labels=live,
        models=["m"],
        system_fingerprints=["fp_1"],
        packaged_fingerprints=["fp_1"],
        fingerprint_changed=False,
    )


@pytest.mark.parametrize(("items", "agreed"), FIGURES)
def test_the_verdict_alarms_only_beyond_the_golden_sets_noise(items: int, agreed: int) -> None:
    run = golden_run(items, agreed)
    assert sum(a == b for a, b in zip(run.packaged_labels, run.live_labels, strict=True)) == agreed
    verdict = canary_verdict(run)
    assert verdict["alarm"] is (run.agreement_high < DEFAULT_MIN_AGREEMENT)
    assert canary_gauges(verdict)["alarm"] == (1.0 if verdict["alarm"] else 0.0)


def test_94_of_100_agreeing_is_no_alarm_and_88_is() -> None:
    assert canary_verdict(golden_run(100, 94))["alarm"] is False
    assert canary_verdict(golden_run(100, 88))["alarm"] is True


def _promtool_case(gauges: dict[str, float], alarm: bool) -> dict[str, object]:
    series = [
        {"series": f'labelwise_canary_{name}{{artifact="clf:1"}}', "values": f"{value}x30"}
        for name, value in gauges.items()
    ]
    expected = []
    if alarm:
        expected = [
            {
                "exp_labels": {"severity": "page", "artifact": "clf:1"},
                "exp_annotations": {
                    "summary": "The live backend labels the golden set differently from the packaged clf:1",
                    "description": (
                        f"Agreement {gauges['agreement']:.0%}: the provider may have changed the model "
                        "behind its name. Run labelwise canary clf:1."
                    ),
                },
            }
        ]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "LabelwiseCanaryDisagreement", "exp_alerts": expected}
        ],
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs Debian's prometheus package (promtool)")
def test_the_alert_rule_pages_exactly_when_the_command_alarms(tmp_path: Path) -> None:
    cases = []
    for items, agreed in FIGURES:
        verdict = canary_verdict(golden_run(items, agreed))
        cases.append(_promtool_case(canary_gauges(verdict), verdict["alarm"]))
    assert any(c["alert_rule_test"][0]["exp_alerts"] for c in cases)  # type: ignore[index]
    assert any(not c["alert_rule_test"][0]["exp_alerts"] for c in cases)  # type: ignore[index]
    test_file = tmp_path / "canary.test.yml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": cases})
    )
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
