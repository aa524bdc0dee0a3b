"""`labelwise canary` against a provider that changes the model behind a name (a fake one, over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labelwise.monitoring import GOLDEN_SET
from labelwise.packaging import load_artifact
from tests.conftest import fake_server_spec, yelp_sample
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise


def _stars(prompt: str) -> str:
    """The packaged model: answers from words of the review."""
    text = prompt.lower()
    if "terrible" in text or "worst" in text or "rude" in text:
        return "negative"
    if "great" in text or "love" in text or "amazing" in text:
        return "positive"
    return "neutral"


def _by_length(prompt: str) -> str:
    return "negative" if len(prompt) > 400 else "positive"


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAIServer, str]]:
    folder = tmp_path_factory.mktemp("canary")
    reviews = yelp_sample(300, seed=5, max_chars=600)
    reviews["label"] = reviews["stars"].map(
        {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
    )
    reviews.to_csv(folder / "eval.csv", index=False)
    with FakeOpenAIServer(answer=_stars) as server:
        spec = fake_server_spec("canaried", server.base_url, api_key_env="CANARY_TEST_KEY")
        (folder / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))
        packaged = json.loads(
            labelwise(
                "package", str(folder / "spec.yaml"), "--eval", str(folder / "eval.csv"), "--json"
            ).stdout
        )
        yield server, packaged["tag"]


def _canary(tag: str, *extra: str) -> tuple[int, dict[str, object]]:
    result = labelwise("canary", tag, "--json", *extra, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_the_golden_set_holds_texts_and_labels_and_no_secret(canary: tuple[FakeOpenAIServer, str]) -> None:
    server, tag = canary
    stored = load_artifact(tag).attachments[GOLDEN_SET].decode()
    golden = json.loads(stored)
    assert len(golden["items"]) == 100 and golden["system_fingerprints"] == ["fp_fake_1"]
    assert {item["label"] for item in golden["items"]} <= {"negative", "neutral", "positive"}
    assert server.base_url not in stored and "CANARY_TEST_KEY" not in stored


def test_the_canary_passes_warns_and_alarms(canary: tuple[FakeOpenAIServer, str]) -> None:
    server, tag = canary
    status, report = _canary(tag)
    assert status == 0 and report["agreement"] == 1.0 and report["alarm"] is False

    # The provider redeploys the same model: the fingerprint changes, the answers do not.
    server.system_fingerprint = "fp_fake_2"
    status, report = _canary(tag)
    assert status == 0 and report["fingerprint_changed"] is True
    assert report["reasons"] == ["(notice) system_fingerprint changed: packaged fp_fake_1, now fp_fake_2"]
    assert _canary(tag, "--fail-on-fingerprint")[0] == 1

    # A few answers differ (6 texts in 100, agreement 0.94 < 0.95): within the golden set's noise,
    # so no alarm, and the alert rule agrees (test_canary_verdict.py runs promtool on 94 of 100).
    flipped = {item["text"] for item in json.loads(load_artifact(tag).attachments[GOLDEN_SET])["items"][:6]}

    def nearly(prompt: str) -> str:
        answer = _stars(prompt)
        if any(text in prompt for text in flipped):
            return "neutral" if answer != "neutral" else "positive"
        return answer

    server.answer = nearly
    status, report = _canary(tag)
    assert status == 0 and report["agreed"] == 94 and report["alarm"] is False, report["reasons"]

    # Another model behind the same name: it judges by length.
    server.answer = _by_length
    status, report = _canary(tag)
    assert status == 1 and report["alarm"] is True and report["agreement"] < 0.8
    assert any(reason.startswith("agreement") for reason in report["reasons"])
    assert any(reason.startswith("label distribution changed") for reason in report["reasons"])
    server.answer, server.system_fingerprint = _stars, "fp_fake_1"


def test_an_artifact_without_a_golden_set_is_a_clean_error(tmp_path: Path) -> None:
    spec = fake_server_spec("no-golden", "http://127.0.0.1:9/v1")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True)))
    tag = json.loads(labelwise("package", str(tmp_path / "spec.yaml"), "--json").stdout)["tag"]
    result = labelwise("canary", tag, check=False)
    assert result.returncode == 2 and "has no golden set: package it with --eval DATA" in result.stderr
    assert "Traceback" not in result.stderr
