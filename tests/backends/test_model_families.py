"""Parameters follow the model: reasoning families, structured outputs, logprobs limits, and the
errors providers answer with today, against the fake in its OpenAI mode (which answers as
OpenAI's documentation says, see ``tests/fake_models.py``)."""

from __future__ import annotations

import json

import openai
import pytest

from labelwise.backends import BackendSpec, QuotaExhausted, RateLimited, capabilities_of
from labelwise.backends._errors import translate_provider_errors
from labelwise.backends._openai import _read_response
from labelwise.core import Reason, SpecError
from labelwise.packaging import Classifier, ClassifierSpec, package
from tests.conftest import spec_dict
from tests.fake_openai import FakeOpenAIServer

LABELS = ["negative", "neutral", "positive"]


def _truth(prompt: str) -> str:
    return "negative" if "bad" in prompt else "positive"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    with FakeOpenAIServer(answer=_truth) as server:
        yield server


def _spec(fake: FakeOpenAIServer, model: str, scoring: str, **backend: object) -> ClassifierSpec:
    return ClassifierSpec.from_dict(
        spec_dict(
            name=f"family-{scoring}",
            backend={"provider": "openai", "model": model, "base_url": fake.base_url, **backend},
            scoring=scoring,
        )
    )


@pytest.mark.parametrize(
    ("model", "reasoning", "logprobs"),
    [
        ("gpt-5-mini", True, False),
        ("gpt-5-nano-2025-08-07", True, False),
        ("o4-mini", True, False),
        ("o3", True, False),
        ("gpt-4.1-mini", False, True),
        ("gpt-4o-mini-2024-07-18", False, True),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", False, True),
        ("gpt-4o-mini-2024-07-18.ft-0123456789abcdef", False, True),  # Azure's fine-tuned id
        ("ft:o4-mini-2025-04-16:acme::r1", True, False),
        ("gemma-3-270m", False, True),  # unknown: assumed to take everything
    ],
)
def test_the_capability_table_by_model_family(model: str, reasoning: bool, logprobs: bool) -> None:
    capabilities = capabilities_of(model)
    assert (capabilities.reasoning, capabilities.logprobs) == (reasoning, logprobs)


def test_a_spec_overrides_the_table_for_a_model_it_does_not_know() -> None:
    spec = BackendSpec(
        provider="openai", model="gpt-7-preview", capabilities={"reasoning": True, "logprobs": False}
    )
    assert spec.capabilities_of("gpt-7-preview").reasoning


def test_the_fake_refuses_max_tokens_and_temperature_for_a_reasoning_model(fake: FakeOpenAIServer) -> None:
    """The fake answers as OpenAI documents it: what labelwise sent before model families were known."""
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "x"}], max_tokens=8, temperature=0
            )
    assert refused.value.code == "unsupported_parameter" and "max_completion_tokens" in refused.value.message


def test_a_json_schema_spec_on_a_reasoning_model_classifies(fake: FakeOpenAIServer) -> None:
    artifact, _ = package(_spec(fake, "gpt-5-mini", "json_schema"))
    with Classifier(artifact=artifact) as classifier:
        predictions = classifier.classify(["this was bad", "this was great"])
    assert [p.label for p in predictions] == ["negative", "positive"]
    assert all(p.reason is None for p in predictions)


def test_a_reasoning_request_carries_no_sampling_and_room_to_think(fake: FakeOpenAIServer) -> None:
    from labelwise.backends import CompletionRequest, completion_backend

    spec = _spec(fake, "o4-mini", "generate")
    backend = completion_backend(spec.backend, model="o4-mini")
    body = backend.request_body(  # type: ignore[attr-defined]
        CompletionRequest(
            prompt="x",
            max_tokens=16,
            temperature=0.0,
            top_p=0.9,
            stop=("\n",),
            logit_bias={1: 100.0},
            top_logprobs=3,
        )  # fmt: skip
    )
    assert not {"max_tokens", "temperature", "top_p", "stop", "logit_bias", "logprobs", "top_logprobs"} & set(
        body
    )
    assert body["max_completion_tokens"] > 16 + 1000 and body["reasoning_effort"] == "low"


def test_a_logprobs_spec_on_a_chat_model_classifies_with_probabilities(fake: FakeOpenAIServer) -> None:
    artifact, _ = package(_spec(fake, "gpt-4.1-mini", "logprobs"))
    with Classifier(artifact=artifact) as classifier:
        predictions = classifier.classify(["this was bad", "this was great"])
    assert [p.label for p in predictions] == ["negative", "positive"]
    for p in predictions:
        assert p.probabilities is not None and 0.0 < min(p.probabilities.values())
        assert p.probabilities[p.label] == pytest.approx(0.7)


@pytest.mark.parametrize("model", ["gpt-5-mini", "o3-mini"])
def test_package_refuses_logprobs_on_a_reasoning_model_and_names_the_way_on(
    fake: FakeOpenAIServer, model: str
) -> None:
    with pytest.raises(SpecError, match="returns no logprobs.*json_schema.*generate"):
        _spec(fake, model, "logprobs")


def test_package_refuses_json_schema_where_the_model_has_no_structured_outputs(
    fake: FakeOpenAIServer,
) -> None:
    with pytest.raises(SpecError, match="takes no json_schema.*generate"):
        _spec(fake, "gpt-3.5-turbo-0125", "json_schema")


def test_completions_ask_for_at_most_the_five_logprobs_the_endpoint_returns(fake: FakeOpenAIServer) -> None:
    labels = ["sports", "world", "business", "science", "health", "travel", "music", "food"]
    spec = ClassifierSpec.from_dict(
        spec_dict(
            name="legacy",
            task={"labels": labels},
            scoring="logprobs",
            backend={
                "provider": "openai",
                "model": "davinci-002",
                "base_url": fake.base_url,
                "api": "completions",
            },
        )  # fmt: skip
    )
    artifact, _ = package(spec)
    with Classifier(artifact=artifact) as classifier:
        [prediction] = classifier.classify(["anything"])
    assert prediction.reason != Reason.BACKEND_BAD_REQUEST, prediction.message


def test_insufficient_quota_is_billing_and_never_retried(fake: FakeOpenAIServer) -> None:
    body = json.dumps({"error": {"message": "You exceeded your current quota, please check your plan and "
                                 "billing details.", "type": "insufficient_quota", "param": None,
                                 "code": "insufficient_quota"}})  # fmt: skip
    fake.fail_next(429, times=5, body=body)
    artifact, _ = package(_spec(fake, "gpt-4.1-mini", "generate"))
    with (
        Classifier(artifact=artifact) as classifier,
        pytest.raises(QuotaExhausted, match="billing") as raised,
    ):
        classifier.classify(["this was bad"])
    assert raised.value.kind == Reason.QUOTA_EXHAUSTED
    assert fake.requests == 1  # not retried
    fake.clear_failures()


def test_rate_limit_waits_follow_openais_reset_headers() -> None:
    import httpx

    def rate_limited(headers: dict[str, str]) -> RateLimited:
        request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
        response = httpx.Response(
            429, headers=headers, request=request, json={"error": {"code": "rate_limit_exceeded"}}
        )
        with pytest.raises(RateLimited) as raised, translate_provider_errors("openai"):
            raise openai.RateLimitError(
                "rate limited", response=response, body={"code": "rate_limit_exceeded"}
            )
        return raised.value

    spent_tokens = {"x-ratelimit-remaining-requests": "40", "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-requests": "120ms", "x-ratelimit-reset-tokens": "6m0s"}  # fmt: skip
    assert rate_limited(spent_tokens).retry_after == pytest.approx(360.0)
    assert rate_limited({"x-ratelimit-reset-requests": "1.5s"}).retry_after == pytest.approx(1.5)
    assert rate_limited({"retry-after-ms": "250", "x-ratelimit-reset-tokens": "9s"}).retry_after == 0.25


def test_a_quota_error_is_not_a_rate_limit() -> None:
    assert not QuotaExhausted.retryable and RateLimited.retryable


def test_a_null_system_fingerprint_is_read_as_unknown() -> None:
    from openai.types.chat import ChatCompletion

    message = {"role": "assistant", "content": "positive", "refusal": None}
    choice = {"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-5-mini",
            "system_fingerprint": None, "choices": [choice]}  # fmt: skip
    completion = _read_response(ChatCompletion.model_validate(body), "openai", chat=True)
    assert completion.system_fingerprint is None and completion.text == "positive"
