"""A fake OpenAI-compatible server on 127.0.0.1, for tests and benchmarks.

It produces what a real provider does on demand only rarely: fixed latency, HTTP 429 beyond a
concurrency cap, scripted failures (429 with Retry-After, 5xx, malformed bodies) and counts of
what it was asked. Answers come from a function of the prompt, so results are known in advance.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from .contracts import contract_for
from .fake_batch_api import FakeBatchAPI
from .fake_deployments import FakeDeployments
from .fake_files import FakeFiles
from .fake_finetune_api import FakeFineTuningAPI
from .fake_models import Refusal, answer_shape, chat_logprobs, check_parameters, completion_logprobs

__all__ = ["FakeOpenAIServer", "bag_of_words"]

SCRIPTED = "x-fake-scripted"
"""Header of an answer scripted with ``fail_next``: broken on purpose, so not validated."""


class _ContractCheck:
    """ASGI middleware: validate each exchange on a path a contract covers (see ``tests.contracts``)."""

    def __init__(self, app: Any, contracts: list[Any]) -> None:
        self.app, self.contracts = app, contracts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from urllib.parse import parse_qsl

        query = dict(parse_qsl(scope.get("query_string", b"").decode())) if scope["type"] == "http" else {}
        contract = next(
            (c for c in self.contracts if scope["type"] == "http" and c.covers(scope["path"], query)), None
        )
        if contract is None:
            await self.app(scope, receive, send)
            return
        from openapi_core.testing import MockRequest, MockResponse

        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-request (a killed process): no exchange to judge
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = MockRequest(
            "http://127.0.0.1", scope["method"].lower(), scope["path"], args=query,
            headers=headers, data=body, content_type=headers.get("content-type", "application/json"),
        )  # fmt: skip
        contract.check_request(request)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        started: dict[str, Any] = {}
        sent: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                sent.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        status = int(started.get("status", 500))
        answer_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in started.get("headers", [])}
        if status < 400 and SCRIPTED not in answer_headers:
            response = MockResponse(
                b"".join(sent), status_code=status,
                content_type=answer_headers.get("content-type", "application/json").split(";")[0],
            )  # fmt: skip
            contract.check_response(request, response)


def _tokens(text: str) -> int:
    from labelwise.backends import openai_encoding

    return len(openai_encoding("gpt-4o-mini").encode(text))


def _count(usage: dict[str, Any], prompt: int, completion: int) -> None:
    completion = max(completion, 1)  # a stop at once still counts the stop token
    usage.update(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _always_positive(prompt: str) -> str:
    return "positive"


def bag_of_words(text: str, dimensions: int = 32) -> list[float]:
    """A deterministic embedding: word counts hashed into ``dimensions`` buckets."""
    vector = [0.0] * dimensions
    for word in re.findall(r"[a-z']+", text.lower()):
        vector[zlib.crc32(word.encode()) % dimensions] += 1.0
    return vector


class FakeOpenAIServer:
    """Serve ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/models``,
    and the Batch API's files and batches (``batch_api``, also under Azure's ``/openai``).

    Parameters
    ----------
    answer : callable, default=always "positive"
        Maps the prompt (the last user message, for chat) to the completion text.
    embed : callable, default=bag_of_words
        Maps a text to its embedding, for ``/v1/embeddings``.
    latency_s : float, default=0.0
        Time each answer takes.
    max_concurrency : int, default=None
        Requests beyond this many in flight get HTTP 429, as a provider's limit would.

    contract : bool, default=True
        Validate every request and every successful answer against the provider's published
        API description (``tests/contracts``); ``stop()`` fails on the first that breaks it.
        Benches turn it off: validation costs a few milliseconds per exchange.

    Use ``fail_next(status, ...)`` to script failures, then read ``requests`` (count) and
    ``max_in_flight``. Scripted failures are not validated: they break the contract on purpose.
    """

    def __init__(
        self,
        *,
        answer: Callable[[str], str] = _always_positive,
        embed: Callable[[str], list[float]] = bag_of_words,
        latency_s: float = 0.0,
        max_concurrency: int | None = None,
        contract: bool = True,
    ) -> None:
        self.contracts = [contract_for("openai"), contract_for("azure_openai")] if contract else []
        self.answer = answer
        self.embed = embed
        self.latency_s = latency_s
        self.max_concurrency = max_concurrency
        self.system_fingerprint = "fp_fake_1"
        """Sent with every completion; a test changes it (and ``answer``) to act out a silent model swap."""
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.first_request_at: float | None = None  # time.time(), for start-up benches
        self.per_second: Counter[int] = Counter()  # requests by whole second of time.time(), for rate benches
        self.request_times: list[float] = []  # time.time() of each request, for rate tests
        self.files = FakeFiles()
        self.batch_api = FakeBatchAPI(self._completion, self.files, batch_deployments={})
        self.fine_tuning = FakeFineTuningAPI(self.files)
        self.deployments = FakeDeployments(
            lambda model: (
                model in self.fine_tuning.models or not model.startswith("ft:") and ".ft-" not in model
            )
        )
        self._faults: deque[tuple[int, dict[str, str], str | None]] = deque()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict[str, str] | None = None, body: str | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and a raw ``body`` if given)."""
        for _ in range(times):
            self._faults.append((status, headers or {}, body))

    def clear_failures(self) -> None:
        """Forget failures scripted with ``fail_next`` that have not happened yet."""
        self._faults.clear()

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def complete(request: Request) -> Response:
            self.requests += 1
            now = time.time()
            self.first_request_at = self.first_request_at or now
            self.per_second[int(now)] += 1
            self.request_times.append(now)
            if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
                return JSONResponse({"error": {"message": "concurrency limit"}}, status_code=429)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                body = await request.json()
                if "deployment" in request.path_params:  # Azure: the deployment names the model
                    model = self.deployments.model_of(request.path_params["deployment"])
                    if model is None:
                        message = (
                            "The API deployment for this resource does not exist. If you created the "
                            "deployment within the last 5 minutes, please wait a moment and try again."
                        )
                        return JSONResponse(
                            {"error": {"code": "DeploymentNotFound", "message": message}}, 404
                        )
                    body["model"] = model
                if self.latency_s:
                    await asyncio.sleep(self.latency_s)
                if self._faults:
                    status, headers, raw = self._faults.popleft()
                    content = raw if raw is not None else '{"error": {"message": "scripted failure"}}'
                    return Response(
                        content,
                        status_code=status,
                        headers={**headers, SCRIPTED: "1"},
                        media_type="application/json",
                    )
                try:
                    return JSONResponse(self._completion(request.url.path, body))
                except Refusal as refusal:
                    return JSONResponse(refusal.body, status_code=refusal.status)
            finally:
                self.in_flight -= 1

        async def models(_: Request) -> Response:
            return JSONResponse(
                {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "me"}]}
            )

        async def stats(request: Request) -> Response:
            """Counters for a bench in another process; DELETE starts them again."""
            counters = {"requests": self.requests, "first_request_at": self.first_request_at,
                        "max_in_flight": self.max_in_flight, "per_second": dict(self.per_second)}  # fmt: skip
            if request.method == "DELETE":
                self.requests, self.first_request_at, self.max_in_flight = 0, None, 0
                self.per_second.clear()
                self.request_times.clear()
            return JSONResponse(counters)

        return Starlette(
            middleware=[Middleware(_ContractCheck, contracts=self.contracts)],
            routes=[
                Route("/stats", stats, methods=["GET", "DELETE"]),
                Route("/v1/chat/completions", complete, methods=["POST"]),
                Route("/v1/completions", complete, methods=["POST"]),
                Route("/v1/embeddings", complete, methods=["POST"]),
                Route("/v1/models", models),
                Route("/openai/deployments/{deployment}/chat/completions", complete, methods=["POST"]),
                Route("/openai/deployments/{deployment}/completions", complete, methods=["POST"]),
                Route("/openai/deployments/{deployment}/embeddings", complete, methods=["POST"]),
                *self.deployments.routes(),
                *self._provider_routes("/v1"),
                *self._provider_routes("/openai"),  # Azure OpenAI's paths
            ],
        )

    def _provider_routes(self, root: str) -> list[Any]:
        return [*self.files.routes(root), *self.batch_api.routes(root), *self.fine_tuning.routes(root)]

    def _completion(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``body`` at ``path``; raises ``Refusal`` for what the model does not take."""
        usage: dict[str, Any] = {}
        common = {
            "id": "fake-1",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "usage": usage,
            "system_fingerprint": self.system_fingerprint,
        }
        if path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": self.embed(t)} for i, t in enumerate(texts)
            ]
            tokens = sum(_tokens(str(t)) for t in texts)
            usage.update(prompt_tokens=tokens, total_tokens=tokens)
            return {"object": "list", "data": data, "model": common["model"], "usage": usage}
        check_parameters(path, body)
        if path.endswith("/chat/completions"):
            prompt = str(body["messages"][-1]["content"])
            served = self.fine_tuning.answer(str(body.get("model")), prompt)
            content, finish, reasoning = answer_shape(
                body, served if served is not None else self.answer(prompt)
            )
            # As OpenAI counts a chat: each message's content and 3 tokens around it, 3 to prime the reply.
            prompt_tokens = sum(_tokens(str(m.get("content") or "")) + 3 for m in body["messages"]) + 3
            _count(usage, prompt_tokens, _tokens(content or "") + reasoning)
            if reasoning:
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
            message = {"role": "assistant", "content": content, "refusal": None}
            logprobs = chat_logprobs(content, body, self._decode)
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}
            return {**common, "object": "chat.completion", "choices": [choice]}
        text = self.answer(str(body["prompt"]))
        _count(usage, _tokens(str(body["prompt"])), _tokens(text))
        logprobs = completion_logprobs(text, body, self._decode)
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": logprobs}
        return {**common, "object": "text_completion", "choices": [choice]}

    @staticmethod
    def _decode(token_id: int) -> str:
        from labelwise.backends import openai_encoding

        return openai_encoding("gpt-4o-mini").decode([token_id])

    def start(self) -> FakeOpenAIServer:
        """Serve on a free port, in a background thread."""
        return self.start_on(0)

    def start_on(self, port: int) -> FakeOpenAIServer:
        """Serve on ``port`` (0: a free one), in a background thread."""
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        broken = [v for contract in self.contracts for v in contract.violations]
        if broken:
            for contract in self.contracts:
                contract.violations.clear()
            kinds = Counter(broken)
            raise AssertionError(
                f"{len(broken)} exchanges with the fake broke the provider's API description:\n"
                + "\n".join(f"{n} x {violation}" for violation, n in kinds.most_common(10))
            )

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
