"""Typed outcomes travel unchanged from the scorer to the service's metrics, the store and batch files.

Each case is an answer whose reason was once told by matching words of a message: no label
token among the logprobs (counted as ``no_label``), an abstention below the threshold (counted
as ``other``), an empty text (a batch status decided on the message).
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from labelwise.backends import BackendUnavailable, Completion, LabelToken
from labelwise.batch import score_frame
from labelwise.core import Reason, Settings
from labelwise.packaging import TECHNIQUES, Calibration, Classifier, ClassifierArtifact, ClassifierSpec
from labelwise.service import ClassifierApp, ClassifyRequest, ClassifyResponse
from labelwise.store import PredictionRow, PredictionStore
from tests.conftest import FakeBackend, spec_dict

LABELS = ["negative", "neutral", "positive"]


def _answer(**probabilities: float) -> Completion:
    return Completion("x", "fake", top_logprobs=[(k, math.log(v)) for k, v in probabilities.items()])


# text -> (what the fake model answers, the reason the outcome must carry)
CASES = {
    "no label token": (_answer(Sure=0.9), Reason.NO_LABEL_TOKEN),
    "unsure": (_answer(neutral=0.34, positive=0.33, negative=0.33), Reason.BELOW_THRESHOLD),
    "sure": (_answer(positive=0.9, neutral=0.1), None),
}


class ScriptedBackend(FakeBackend):
    """Answers by the text in the prompt, whatever order concurrent requests arrive in."""

    async def complete(self, request):  # type: ignore[no-untyped-def]
        for text, (answer, _) in CASES.items():
            if f"Text: {text}\n" in request.prompt:
                return answer
        raise BackendUnavailable("the fake backend is down for this text")


def _classifier(tmp_name: str) -> Classifier:
    backend = {"provider": "openai", "model": "gpt-4o-mini", "max_retries": 0}
    spec = ClassifierSpec.from_dict(
        spec_dict(name=tmp_name, scoring="logprobs", backend=backend, calibration={"abstain_below": 0.5})
    )
    assert spec.calibration == Calibration(abstain_below=0.5)
    tokens = {label: LabelToken(i, label) for i, label in enumerate(LABELS)}
    return Classifier(artifact=ClassifierArtifact(spec=spec, label_tokens=tokens), backend=ScriptedBackend())


def _metric_lines(name: str) -> list[str]:
    """What /metrics shows: the multiprocess files BentoML sums, or this process's registry."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return [line for line in generate_latest(registry).decode().splitlines() if line.startswith(name + "{")]


def test_reasons_reach_metrics_and_the_store(tmp_path: Path) -> None:
    classifier = _classifier("outcomes-service")
    tag = str(classifier.tag_)
    store = PredictionStore.from_url(f"sqlite:///{tmp_path / 'predictions.db'}")
    app = ClassifierApp(classifier=classifier, store=store, settings=Settings(model=tag))
    texts = list(CASES)

    async def classify_and_stop() -> list[ClassifyResponse]:
        try:
            return await app.classify_batch([ClassifyRequest(text=t) for t in texts])
        finally:
            await app.aclose()  # writes the prediction log's pending rows, as the service's shutdown does

    responses = asyncio.run(classify_and_stop())

    assert [r.reason for r in responses] == [reason for _, reason in CASES.values()]
    assert responses[1].message is not None and "abstained" in responses[1].message
    store = PredictionStore.from_url(f"sqlite:///{tmp_path / 'predictions.db'}")
    try:
        stored = {row.id: row for row in store.predictions()}
    finally:
        store.close()
    for response, (_, reason) in zip(responses, CASES.values(), strict=True):
        row: PredictionRow = stored[response.prediction_id]
        assert row.reason == (reason.value if reason else None)
    # The abstention still has a distribution: confidence is its top probability, as in drift.
    assert stored[responses[1].prediction_id].confidence == pytest.approx(0.34)

    lines = [line for line in _metric_lines("labelwise_abstentions_total") if f'artifact="{tag}"' in line]
    counted = {line.split('reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1]) for line in lines}
    assert counted == {"no_label_token": 1.0, "below_threshold": 1.0}


def test_reasons_reach_the_batch_file(tmp_path: Path) -> None:
    classifier = _classifier("outcomes-batch")
    frame = pd.DataFrame({"text": [*CASES, "   ", "backend down"]})

    async def run() -> pd.DataFrame:
        async with classifier:
            scored, _ = await score_frame(frame, classifier)
            return scored

    scored = asyncio.run(run())
    assert scored["status"].tolist() == ["no_label", "no_label", "ok", "empty", "error"]
    assert scored["reason"].tolist()[:2] == ["no_label_token", "below_threshold"]
    assert pd.isna(scored["reason"][2])
    assert scored["reason"].tolist()[3:] == ["empty_text", "backend_unavailable"]
    assert "down" in scored["message"][4]


def test_backend_errors_name_their_reason_and_come_back_from_it() -> None:
    error = BackendUnavailable("down", retry_after=3.0)
    assert error.kind is Reason.BACKEND_UNAVAILABLE and error.kind.is_failure
    again = type(error).from_kind(error.kind, str(error), retry_after=error.retry_after)
    assert type(again) is BackendUnavailable and again.retry_after == 3.0
    assert not Reason.NO_LABEL.is_failure


def test_every_technique_kind_has_a_strategy() -> None:
    from typing import get_args

    from labelwise.packaging._spec import TechniqueSpec

    spec_models = get_args(get_args(TechniqueSpec)[0])
    kinds = {get_args(cls.model_fields["kind"].annotation)[0] for cls in spec_models}
    assert kinds == set(TECHNIQUES)


def _lines_outside_the_techniques_module(pattern: str) -> list[str]:
    import re

    package = Path(__file__).resolve().parents[2] / "labelwise"
    found = re.compile(pattern)
    return [
        f"{path.relative_to(package)}:{n}: {line.strip()}"
        for path in package.rglob("*.py")
        if path.name != "_techniques.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if found.search(line)
    ]


def test_no_module_branches_on_technique_types_outside_the_strategies() -> None:
    pattern = r"isinstance\([^)]*\b(ZeroShot|FewShot|FineTuned|Embedding|LocalFineTuned)\b\s*[,)]"
    assert _lines_outside_the_techniques_module(pattern) == []


def test_no_module_branches_on_a_technique_kind_or_a_provider_name() -> None:
    """Kinds map to behaviour in the techniques module only; providers say what they need themselves."""
    providers = "local|openai|azure_openai|openai_compatible|sentence_transformers"
    kinds = "zero_shot|few_shot|fine_tuned|embedding|local_fine_tuned"
    pattern = (
        rf"""(provider\s*(==|!=|in)\s*[\("']+({providers})\b)|(kind\s*(==|!=|in)\s*[\("']+({kinds})\b)"""
    )
    assert _lines_outside_the_techniques_module(pattern) == []
