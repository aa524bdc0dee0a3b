"""Peer of `labelwise batch score` on data larger than memory: the skilled asyncio loop, reading
and writing Parquet in chunks, each distinct text sent once.

python bench/_async_chunked.py INPUT.parquet OUTPUT.parquet BASE_URL CONCURRENCY CHUNK_ROWS
"""

import asyncio
import sys

import openai
import pyarrow as pa
import pyarrow.parquet as pq

TEMPLATE = "Sentiment (negative, neutral, positive) of: {text}"


async def main(source: str, out: str, base_url: str, concurrency: int, chunk_rows: int) -> None:
    client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=5)
    semaphore = asyncio.Semaphore(concurrency)
    labels: dict[str, str] = {}

    async def classify(text: str) -> None:
        async with semaphore:
            completion = await client.chat.completions.create(
                model="fake-model",
                messages=[{"role": "user", "content": TEMPLATE.format(text=text)}],
                max_tokens=2,
                temperature=0,
            )
            labels[text] = (completion.choices[0].message.content or "").strip()

    writer = None
    for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_rows):
        texts = batch.column("text").to_pylist()
        await asyncio.gather(*(classify(t) for t in dict.fromkeys(texts) if t not in labels))
        table = pa.Table.from_batches([batch]).append_column("label", pa.array([labels[t] for t in texts]))
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
