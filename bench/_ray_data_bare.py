"""Peer of `labelwise batch score --engine ray`: a bare Ray Data script making the same calls.

python bench/_ray_data_bare.py ADDRESS INPUT.parquet OUTPUT_DIR BASE_URL ACTORS CONCURRENCY CHUNK_ROWS
"""

import asyncio
import sys

import openai
import pyarrow as pa
import ray

TEMPLATE = "Sentiment (negative, neutral, positive) of: {text}"


class Scorer:
    def __init__(self, base_url: str, concurrency: int) -> None:
        self.client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=5)
        self.loop = asyncio.new_event_loop()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.labels: dict[str, str] = {}

    async def classify(self, text: str) -> None:
        async with self.semaphore:
            completion = await self.client.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": TEMPLATE.format(text=text)}],
                max_tokens=2,
                temperature=0,
            )
            self.labels[text] = (completion.choices[0].message.content or "").strip()

    async def classify_all(self, texts: list[str]) -> None:
        await asyncio.gather(*(self.classify(t) for t in dict.fromkeys(texts) if t not in self.labels))

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = batch.column("text").to_pylist()
        self.loop.run_until_complete(self.classify_all(texts))
        return batch.append_column("label", pa.array([self.labels[t] for t in texts]))


if __name__ == "__main__":
    address, source, out, base_url = sys.argv[1:5]
    actors, concurrency, chunk_rows = (int(a) for a in sys.argv[5:8])
    ray.init(address=address, log_to_driver=False)
    ray.data.read_parquet(source).map_batches(
        Scorer,
        batch_format="pyarrow",
        batch_size=chunk_rows,
        concurrency=actors,
        fn_constructor_kwargs={"base_url": base_url, "concurrency": -(-concurrency // actors)},
    ).write_parquet(out)
