"""The alert rules and the dashboard against a real Prometheus scraping a two-worker service.

Prometheus and promtool come from Debian's `prometheus` package (.ci/services.sh installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labelwise.core import free_port
from tests.conftest import REPO
from tests.fake_openai import FakeOpenAIServer, bag_of_words
from tests.service.conftest import WORDS, RunningServer, embedding_artifact, labelwise_serve
from tests.test_cli import labelwise

RULES = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "labelwise-dashboard.json"
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="needs Debian's prometheus package (prometheus and promtool on PATH)",
)


@needs_prometheus
def test_promtool_checks_the_rules_and_their_unit_tests() -> None:
    for command in (
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
        ["check", "config", "prometheus.yml"],
    ):
        result = subprocess.run(["promtool", *command], cwd=RULES, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def _dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, with the dashboard's variables given values."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (panel["title"], target["expr"].replace("$artifact", ".*").replace("$__rate_interval", "30s"))
        for panel in panels
        for target in panel.get("targets", [])
    ]


class Prometheus:
    """A real Prometheus scraping one target every second, with labelwise's alert rules loaded."""

    def __init__(self, target: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{RULES / 'alerts.yml'}']\n"
            "scrape_configs:\n"
            f"  - job_name: labelwise\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("prometheus did not become ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", (promql, body)
        return list(body["data"]["result"])

    def wait_for(self, promql: str, accept: Any, timeout_s: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result and accept(result):
                return result
            time.sleep(1)
        raise AssertionError(f"{promql}: not as expected within {timeout_s} s; last {result}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


SERIES = {
    "labelwise_predictions_total", "labelwise_backend_latency_seconds_bucket",
    "labelwise_prediction_confidence_bucket", "labelwise_feedback_writes_total",
    "labelwise_feedback_events_total", "labelwise_online_accuracy", "labelwise_estimated_accuracy",
    "labelwise_estimated_accuracy_lower_bound", "labelwise_reference_accuracy",
    "labelwise_estimated_accuracy_trusted", "labelwise_canary_agreement",
    "labelwise_canary_fingerprint_changed", "labelwise_canary_last_run_timestamp_seconds",
}  # fmt: skip
PANELS_WITH_DATA = (
    "Predicted labels per second",
    "Accuracy: packaged, estimated without labels, from feedback",
    "Feedback per second: thumbs and implicit signals",
    "Canary agreement with the packaged labels",
    "Latency of /classify (p50, p99) and of the backend (p99)",
    "Requests per second by route and status",
)
Watched = tuple[RunningServer, FakeOpenAIServer, Prometheus]


def _value(result: list[dict[str, Any]]) -> float:
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    folder = tmp_path_factory.mktemp("prometheus")
    with FakeOpenAIServer() as fake:
        artifact = embedding_artifact(fake.base_url)
        rows = ["label,text"] + [
            f"{label},{words[i % 2]} and {words[(i + 1) % 2]} at place {i}"
            for label, words in WORDS.items()
            for i in range(30)
        ]
        (folder / "eval.csv").write_text("\n".join(rows) + "\n")
        labelwise("eval", str(artifact.tag), str(folder / "eval.csv"), "--attach")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("LABELWISE_CANARY_INTERVAL_S", "2")
            with labelwise_serve(str(artifact.tag), folder, workers=2) as server:
                prometheus = Prometheus(server.url.removeprefix("http://"), folder)
                try:
                    prometheus.wait_ready()
                    yield server, fake, prometheus
                finally:
                    prometheus.stop()


@needs_prometheus
@pytest.mark.slow
def test_prometheus_scrapes_the_service_and_the_canary_drops_when_the_model_changes(watched: Watched) -> None:
    server, fake, prometheus = watched
    texts = [f"{words[0]} lunch {i}" for i in range(10) for words in WORDS.values()]
    items = {"items": [{"text": t} for t in texts]}
    answered = httpx.post(f"{server.url}/classify_batch", json=items, timeout=60)
    assert answered.status_code == 200, answered.text
    for prediction in answered.json()["predictions"][:5]:
        for kind in ({"thumbs": "up"}, {"signal": "clicked"}):
            body = {"prediction_id": prediction["prediction_id"], **kind}
            sent = httpx.post(f"{server.url}/feedback", json=body)
            assert sent.status_code == 201, sent.text

    tag = server.tag
    prometheus.wait_for(f'labelwise_canary_agreement{{artifact="{tag}"}}', lambda r: _value(r) == 1.0)
    clicked = f'labelwise_feedback_events_total{{artifact="{tag}",signal="clicked"}}'
    prometheus.wait_for(clicked, lambda r: _value(r) == 5)
    estimated = prometheus.wait_for(f'labelwise_estimated_accuracy{{artifact="{tag}"}}', lambda r: True)
    assert 0.5 < _value(estimated) <= 1.0
    live = httpx.post(f"{server.url}/accuracy/estimate", json={}, timeout=30).json()
    assert live["method"].startswith("fitted map") and live["warning"] is None
    assert live["predictions"] == len(texts) and live["value"] == pytest.approx(_value(estimated))
    assert set(live["per_label"]) <= set(WORDS) and live["low"] <= live["value"] <= live["high"]
    found = prometheus.query('group by (__name__) ({__name__=~"labelwise_.+"})')
    assert SERIES <= {row["metric"]["__name__"] for row in found}
    # Both workers answered; their counts are summed.
    assert _value(prometheus.query(f'sum(labelwise_predictions_total{{artifact="{tag}"}})')) == len(texts)

    rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = [rule for group in rules for rule in group["rules"]]
    assert len(loaded) == 10 and all(rule["health"] == "ok" for rule in loaded), loaded

    # Every dashboard query is valid PromQL (query() asserts it); those fed by this traffic show data.
    time.sleep(3)  # scrapes after the traffic, for the rate() panels
    with_data = {title for title, promql in _dashboard_queries() if prometheus.query(promql)}
    assert set(PANELS_WITH_DATA) <= with_data

    # The provider swaps the model behind the name: other embeddings, other labels.
    fake.embed = lambda text: list(reversed(bag_of_words(text)))
    prometheus.wait_for(f'labelwise_canary_agreement{{artifact="{tag}"}}', lambda r: _value(r) < 0.95)
    prometheus.wait_for('ALERTS{alertname="LabelwiseCanaryDisagreement"}', lambda r: True)  # pending 10 min
