"""The peer of labelwise's service: a bare BentoML service making the same openai call.

BARE_BASE_URL=http://127.0.0.1:PORT/v1 bentoml serve _bare_bento:BareService --working-dir bench
"""

import os

import bentoml
import openai


@bentoml.service(workers=1)
class BareService:
    def __init__(self) -> None:
        base_url = os.environ["BARE_BASE_URL"]
        self.client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=0)

    @bentoml.api
    async def classify(self, text: str) -> dict[str, str]:
        completion = await self.client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": f"Sentiment (negative, neutral, positive) of: {text}"}],
            max_tokens=16,
            temperature=0,
        )
        return {"label": (completion.choices[0].message.content or "").strip()}
