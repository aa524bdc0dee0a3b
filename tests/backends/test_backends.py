"""Provider faults and response shapes, through an httpx transport handed to the openai SDK."""

from __future__ import annotations

import http.server
import inspect
import json
import random
import socket
import threading
import time

import httpx
import openai
import pytest

from labelwise.backends import (
    BackendAuthError,
    BackendBadRequest,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BackendUnreachable,
    LabelToken,
    MalformedResponse,
    RateLimited,
    RetryPolicy,
    call_with_retries,
    translate_provider_errors,
)
from labelwise.core import LabelwiseError
from labelwise.packaging import Classifier, ClassifierArtifact, ClassifierSpec
from tests.conftest import spec_dict

LABELS = ["negative", "neutral", "positive"]


def chat_body(content: str, *, top: list[tuple[str, float]] | None = None) -> dict[str, object]:
    logprobs = None
    if top is not None:
        logprobs = {
            "content": [
                {
                    "token": top[0][0],
                    "logprob": top[0][1],
                    "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top],
                }
            ]
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }


class Script:
    """A transport handler that answers with a scripted sequence and records each request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        return item


def _classifier(
    script: Script, monkeypatch: pytest.MonkeyPatch, *, scoring: str = "generate", max_retries: int = 3
) -> Classifier:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    backend = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "max_retries": max_retries,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 1.0,
        "timeout_s": 5,
    }
    spec = ClassifierSpec.from_dict(spec_dict(backend=backend, scoring=scoring))
    tokens = (
        {label: LabelToken(i, label) for i, label in enumerate(LABELS)} if scoring == "logprobs" else None
    )
    artifact = ClassifierArtifact(spec=spec, label_tokens=tokens)
    client = httpx.AsyncClient(transport=httpx.MockTransport(script))
    return Classifier(artifact=artifact, http_client=client, random_state=0)


def test_generate_reads_the_label_and_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(200, json=chat_body("Positive.")))
    [prediction] = _classifier(script, monkeypatch).classify(["I love it"])
    assert prediction.label == "positive" and prediction.probabilities is None
    assert (prediction.prompt_tokens, prediction.completion_tokens) == (12, 1)
    assert prediction.model == "gpt-4o-mini-2024-07-18"
    sent = json.loads(script.requests[0].content)
    assert sent["temperature"] == 0 and sent["seed"] == 0
    assert script.requests[0].headers["authorization"] == "Bearer test-key"


def test_logprobs_are_renormalised_over_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    import math

    top = [("positive", math.log(0.6)), (" neutral", math.log(0.2)), ("Yes", math.log(0.1))]
    script = Script(httpx.Response(200, json=chat_body("positive", top=top)))
    classifier = _classifier(script, monkeypatch, scoring="logprobs")
    [prediction] = classifier.classify(["fine"])
    assert prediction.label == "positive"
    # "negative" is not among the alternatives: it has at most the smallest one returned (0.1).
    expected = {"negative": 0.1 / 0.9, "neutral": 0.2 / 0.9, "positive": 0.6 / 0.9}
    assert prediction.probabilities == pytest.approx(expected)
    sent = json.loads(script.requests[0].content)
    assert sent["max_tokens"] == 1 and sent["logprobs"] is True and sent["top_logprobs"] == 3
    assert sent["logit_bias"] == {"0": 100, "1": 100, "2": 100}  # integers, as the schema says
    assert all(isinstance(v, int) for v in sent["logit_bias"].values())
    proba = classifier.predict_proba(["fine"])
    assert proba.shape == (1, 3) and proba[0].tolist() == pytest.approx(list(expected.values()))


def test_json_schema_mode_sends_the_label_enum(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(200, json=chat_body('{"label": "neutral"}')))
    [prediction] = _classifier(script, monkeypatch, scoring="json_schema").classify(["ok"])
    assert prediction.label == "neutral"
    sent = json.loads(script.requests[0].content)
    schema = sent["response_format"]["json_schema"]["schema"]
    assert sent["response_format"]["type"] == "json_schema"
    assert schema["properties"]["label"]["enum"] == LABELS


def test_429_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(
        httpx.Response(429, headers={"retry-after": "0.3"}, json={"error": {"message": "slow down"}}),
        httpx.Response(200, json=chat_body("negative")),
    )
    [prediction] = _classifier(script, monkeypatch).classify(["bad"])
    assert prediction.label == "negative"
    assert len(script.requests) == 2
    assert script.times[1] - script.times[0] >= 0.3


def test_retry_after_longer_than_the_policy_allows_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": "120"}, json={"error": {"message": "quota"}}))
    with pytest.raises(RateLimited, match="retry after 120") as info:
        _classifier(script, monkeypatch).classify(["x"])
    assert info.value.retry_after == 120
    assert len(script.requests) == 1


def test_500_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(500, json={"error": {"message": "boom"}}))
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        _classifier(script, monkeypatch, max_retries=2).classify(["x"])
    assert len(script.requests) == 3


def test_500_then_success_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(503), httpx.Response(200, json=chat_body("neutral")))
    assert _classifier(script, monkeypatch).predict(["x"]).tolist() == ["neutral"]


def test_timeout_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.ReadTimeout("read timed out"))
    with pytest.raises(BackendTimeout):
        _classifier(script, monkeypatch, max_retries=1).classify(["x"])
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway</html>", headers={"content-type": "application/json"}),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json={"choices": [], "model": "m"}),
    ],
    ids=["not-json", "no-choices-key", "empty-choices"],
)
def test_malformed_body_is_not_retried(monkeypatch: pytest.MonkeyPatch, response: httpx.Response) -> None:
    script = Script(response)
    with pytest.raises(MalformedResponse):
        _classifier(script, monkeypatch).classify(["x"])
    assert len(script.requests) == 1


def test_bad_request_and_auth_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(httpx.Response(400, json={"error": {"message": "bad max_tokens"}}))
    with pytest.raises(BackendBadRequest, match="bad max_tokens"):
        _classifier(script, monkeypatch).classify(["x"])
    script = Script(httpx.Response(401, json={"error": {"message": "invalid key"}}))
    with pytest.raises(BackendAuthError, match="api_key_env"):
        _classifier(script, monkeypatch).classify(["x"])
    assert len(script.requests) == 1


def test_missing_key_names_the_variable() -> None:
    spec = ClassifierSpec.from_dict(
        spec_dict(backend={"provider": "openai", "model": "m", "api_key_env": "TEAM_KEY"})
    )
    with pytest.raises(BackendAuthError, match="set the environment variable TEAM_KEY"):
        Classifier(artifact=ClassifierArtifact(spec=spec)).classify(["x"])


def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = {
        "provider": "openai_compatible",
        "model": "m",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "max_retries": 0,
    }
    spec = ClassifierSpec.from_dict(spec_dict(backend=backend))
    with pytest.raises(BackendUnreachable, match="cannot reach openai_compatible"):
        Classifier(artifact=ClassifierArtifact(spec=spec)).classify(["x"])


# --- the boundary ------------------------------------------------------------


def _instances() -> list[openai.OpenAIError]:
    """One instance of every exception class the SDK exports."""
    request = httpx.Request("POST", "https://api.example/v1/chat/completions")
    out: list[openai.OpenAIError] = []
    for _, cls in inspect.getmembers(openai, inspect.isclass):
        if not issubclass(cls, openai.OpenAIError):
            continue
        status = {"RateLimitError": 429, "InternalServerError": 500}.get(cls.__name__, 400)
        response = httpx.Response(status, request=request)
        attempts: list[tuple[tuple[object, ...], dict[str, object]]] = [
            (("x",), {"response": response, "body": None}),
            ((), {"response": response, "body": None}),
            ((response, None), {}),
            ((), {"request": request}),
            (("x", request), {"body": None}),
            (("x",), {"unsent_messages": []}),
            ((), {}),
        ]
        for args, kwargs in attempts:
            try:
                out.append(cls(*args, **kwargs))
                break
            except TypeError:
                continue
        else:
            out.append(cls.__new__(cls))
    return out


@pytest.mark.parametrize("exc", _instances(), ids=lambda e: type(e).__name__)
def test_every_sdk_exception_is_translated(exc: openai.OpenAIError) -> None:
    with pytest.raises(LabelwiseError) as info:
        with translate_provider_errors("openai"):
            raise exc
    assert info.value.__cause__ is exc
    if isinstance(exc, openai.APIStatusError | openai.APIConnectionError | openai.APIResponseValidationError):
        # Errors with an HTTP meaning get a specific class, not the catch-all.
        assert type(info.value) is not BackendError


@pytest.mark.anyio
async def test_backoff_grows_with_jitter_and_stops() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    async def always_down() -> str:
        raise BackendUnavailable("down")

    policy = RetryPolicy(max_retries=5, initial_s=1.0, max_s=8.0)
    with pytest.raises(BackendUnavailable):
        await call_with_retries(always_down, policy, rng=random.Random(0), sleep=record)
    assert len(sleeps) == 5
    caps = [1, 2, 4, 8, 8]
    assert all(0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))
    assert len(set(sleeps)) == 5  # jittered, not fixed


def test_azure_uses_the_deployment_and_api_key_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-test-key")
    backend = {
        "provider": "azure_openai",
        "model": "yelp-deployment",
        "base_url": "https://example-resource.openai.azure.com",
        "api_version": "2024-10-21",
    }
    spec = ClassifierSpec.from_dict(spec_dict(backend=backend))
    script = Script(httpx.Response(200, json=chat_body("neutral")))
    client = httpx.AsyncClient(transport=httpx.MockTransport(script))
    classifier = Classifier(artifact=ClassifierArtifact(spec=spec), http_client=client)
    assert classifier.predict(["ok"]).tolist() == ["neutral"]
    request = script.requests[0]
    assert request.url.path == "/openai/deployments/yelp-deployment/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "azure-test-key"


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers after 2 s."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["content-length"]))
        time.sleep(2.0)
        body = json.dumps(chat_body("positive")).encode()
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except BrokenPipeError:
            pass  # the client gave up, as it should

    def log_message(self, *args: object) -> None:
        pass


def test_configured_timeout_against_a_slow_server() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        backend = {
            "provider": "openai_compatible",
            "model": "m",
            "base_url": base_url,
            "timeout_s": 0.3,
            "max_retries": 0,
        }
        classifier = Classifier(
            artifact=ClassifierArtifact(spec=ClassifierSpec.from_dict(spec_dict(backend=backend)))
        )
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            classifier.classify(["x"])
        assert time.monotonic() - started < 1.5
    finally:
        server.shutdown()
        server.server_close()


def test_openai_label_tokens_offline_through_tiktoken() -> None:
    from labelwise.core import SpecError
    from labelwise.packaging import package

    spec = ClassifierSpec.from_dict(
        spec_dict(name="openai-logprobs", task={"labels": ["1", "2", "3", "4", "5"]}, scoring="logprobs")
    )
    artifact, _ = package(spec)
    assert artifact.label_tokens is not None
    assert [t.piece for t in artifact.label_tokens.values()] == ["1", "2", "3", "4", "5"]
    shared = spec_dict(name="openai-shared", task={"labels": ["very good", "very bad"]}, scoring="logprobs")
    with pytest.raises(SpecError, match="share their first token 'very'"):
        package(ClassifierSpec.from_dict(shared))
