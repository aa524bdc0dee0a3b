"""The peer of `labelwise batch score`: the asyncio loop a skilled engineer writes in 15 lines.

python bench/_async_loop.py INPUT.csv OUTPUT.csv BASE_URL CONCURRENCY TEMPLATE
"""

import asyncio
import sys

import openai
import pandas as pd


async def main(source: str, out: str, base_url: str, concurrency: int, template: str) -> None:
    frame = pd.read_csv(source)
    client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=5)
    semaphore = asyncio.Semaphore(concurrency)

    async def classify(text: str) -> str:
        async with semaphore:
            completion = await client.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": template.format(text=text[:600])}],
                max_tokens=2,
                temperature=0,
            )
            return (completion.choices[0].message.content or "").strip()

    frame["label"] = await asyncio.gather(*(classify(t) for t in frame["text"]))
    frame.to_csv(out, index=False)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
