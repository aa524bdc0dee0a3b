"""``labelwise batch score`` on data larger than it holds in memory, locally and on a Ray cluster,
against peers run in the same script. A fake OpenAI-compatible backend (its own process) answers
every request after LATENCY seconds and counts requests per second.

1. Local engine on ROWS generated rows (DISTINCT texts of about 400 characters, repeated at
   random): rows/s and peak RSS sampled every 0.2 s (printed as parts are written), against the
   skilled asyncio loop reading and writing the same Parquet in chunks (bench/_async_chunked.py).
2. Ray engine on a 2-node cluster started here (``ray start --head`` and ``ray start --address``):
   rows/s against a bare Ray Data ``map_batches`` script making the same calls with the same
   actors and concurrency (bench/_ray_data_bare.py); and on a 1-node cluster against the local
   engine's time.
3. One rate limit for the cluster: the most requests the fake saw in any 10-second window
   against the configured --rpm.
4. SIGKILL of the driver half way, then the same command again, on both engines: every input
   row in the output exactly once, and how many texts were sent twice.
5. An embedding classifier on Ray: models loaded, counted in each actor.

    .venv/bin/python bench/batch_beyond_memory.py [--rows 1000000] [--distinct 20000]
        [--latency 0.02] [--concurrency 32] [--kill-rows 200000] [--skip-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="labelwise-bench-"))

import httpx  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.dataset as pads  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/ holds the harness
from labelwise.core import free_port  # noqa: E402
from tests.serve_process import wait_ready  # noqa: E402

BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "labelwise.cli"]
ACTORS = ["--actors", "2"]
WORDS = (
    "food service staff price table wait order menu taste room night place music drink "
    "friendly slow cold fresh great awful decent lovely rude clean loud quiet"
).split()


def generate(path: Path, rows: int, distinct: int, seed: int = 0) -> None:
    """ROWS rows of (id, text): each of DISTINCT texts of ~400 characters once, then drawn at random.

    Written in chunks, so that the bench holds no more of it than the scorer does.
    """
    rng = random.Random(seed)
    texts = [
        f"review {seed}-{j}: " + " ".join(rng.choice(WORDS) for _ in range(64))[:390] for j in range(distinct)
    ]
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 100_000):
            ids = range(start, min(start + 100_000, rows))
            chosen = [texts[i] if i < distinct else texts[rng.randrange(distinct)] for i in ids]
            writer.write_table(
                pa.table({"id": list(ids), "text": chosen}, schema=schema), row_group_size=50_000
            )


def fake_backend(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "_peers.py"), "backend", str(port), str(latency)]
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"{base_url}/models", process, timeout_s=20)
    return process, base_url


def stats(base_url: str, *, reset: bool = False) -> dict[str, Any]:
    url = base_url.removesuffix("/v1") + "/stats"
    return (httpx.delete(url) if reset else httpx.get(url)).json()  # type: ignore[no-any-return]


def run_watched(
    command: list[str], env: dict[str, str], parts: Path | None = None, kill_at_part: int | None = None
) -> dict[str, Any]:
    """Run ``command``; its wall time, peak RSS (with its children) and RSS as parts appear.

    ``kill_at_part``: SIGKILL it once that many parts are written.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watched = psutil.Process(process.pid)
    peak, trace, seen = 0, [], -1
    while process.poll() is None:
        try:
            rss = watched.memory_info().rss + sum(
                c.memory_info().rss for c in watched.children(recursive=True)
            )
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        written = len(list(parts.glob("part-*.parquet"))) if parts is not None and parts.exists() else 0
        if written != seen:
            trace.append((time.perf_counter() - started, written, rss))
            seen = written
        if kill_at_part is not None and written >= kill_at_part:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return {"wall": time.perf_counter() - started, "peak": peak, "trace": trace, "killed": True}
        time.sleep(0.2)
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{err.decode()[-3000:]}")
    return {"wall": time.perf_counter() - started, "peak": peak, "trace": trace, "stdout": out.decode()}


@dataclass
class Bench:
    args: argparse.Namespace
    home: Path
    base_url: str
    env: dict[str, str]

    def fresh_tag(self, name: str) -> str:
        """A classifier of its own for each run, so that no run finds another's texts in the cache."""
        spec = self.home / f"{name}.yaml"
        spec.write_text(
            f"name: {name}\ntask: {{labels: [negative, neutral, positive]}}\n"
            "technique: {kind: zero_shot, template: 'Sentiment (negative, neutral, positive) of: {text}'}\n"
            "backend: {provider: openai_compatible, model: fake-model, max_retries: 5, "
            f"base_url: '{self.base_url}'}}\n"
            "decoding: {max_tokens: 2}\n"
        )
        result = subprocess.run(
            [*CLI, "package", str(spec), "--json"], env=self.env, check=True, capture_output=True
        )
        return str(json.loads(result.stdout)["tag"])

    def score(self, name: str, data: Path, *extra: str) -> list[str]:
        """``labelwise batch score`` of ``data`` into HOME/NAME with a fresh classifier."""
        return [*CLI, "batch", "score", self.fresh_tag(name), str(data), "--out", str(self.home / name),
                "--concurrency", str(self.args.concurrency), "--rows-per-part", str(self.args.rows_per_part),
                "--json", *extra]  # fmt: skip


def check_once(out: Path, rows: int) -> tuple[int, int]:
    ids = pads.dataset(out).to_table(columns=["id"])["id"].to_pylist()
    return len(ids) - len(set(ids)), rows - len(set(ids))  # duplicated, lost


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def local_vs_loop(bench: Bench, data: Path) -> float:
    args = bench.args
    print(
        f"\n1. local engine, {args.rows:,} rows ({args.distinct:,} distinct texts), "
        f"{args.latency * 1000:.0f} ms a request, concurrency {args.concurrency}"
    )
    stats(bench.base_url, reset=True)
    ours = run_watched(bench.score("local", data), bench.env, parts=bench.home / "local")
    sent = stats(bench.base_url)["requests"]
    loop = run_watched(
        [sys.executable, str(REPO / "bench" / "_async_chunked.py"), str(data),
         str(bench.home / "loop.parquet"), bench.base_url, str(args.concurrency), str(args.rows_per_part)],
        bench.env,
    )  # fmt: skip
    print("   RSS of labelwise as parts were written (s, parts, RSS):")
    for at, written, rss in ours["trace"][:: max(1, len(ours["trace"]) // 12)]:
        print(f"     {at:6.1f} s  {written:4d} parts  {gib(rss)}")
    after_minute = [rss for at, _, rss in ours["trace"] if at >= 60]
    flat = (
        f"; after the first minute {gib(min(after_minute))} to {gib(max(after_minute))}"
        if after_minute
        else ""
    )
    print(
        f"   labelwise batch score   {args.rows / ours['wall']:8.0f} rows/s  ({ours['wall']:.1f} s, "
        f"{sent} requests, peak RSS {gib(ours['peak'])}{flat})"
    )
    print(
        f"   async chunked loop      {args.rows / loop['wall']:8.0f} rows/s  "
        f"({loop['wall']:.1f} s, peak RSS {gib(loop['peak'])})"
    )
    print(f"   rows/s against the loop: {loop['wall'] / ours['wall']:.2f}x")
    return float(ours["wall"])


def ray_cluster(nodes: int, env: dict[str, str], *, cpus: int = 2) -> str:
    """Start a cluster of ``nodes`` on this machine, as a user would on several; its address.

    Two CPUs a node: room for the bare script's read tasks beside its actor.
    """
    ray = str(BIN / "ray")
    subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
    port = free_port()
    common = ["--num-cpus", str(cpus), "--disable-usage-stats"]
    subprocess.run([ray, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
                   env=env, check=True, capture_output=True)  # fmt: skip
    address = f"127.0.0.1:{port}"
    for _ in range(nodes - 1):
        subprocess.run(
            [ray, "start", "--address", address, *common], env=env, check=True, capture_output=True
        )
    return address


def on_ray(bench: Bench, data: Path, local_wall: float) -> None:
    args, env = bench.args, bench.env
    try:
        print("\n2. Ray engine")
        address = ray_cluster(2, env)
        on_cluster = ["--engine", "ray", "--address", address, *ACTORS]
        ours2 = run_watched(bench.score("ray2", data, *on_cluster), env)
        bare = run_watched(
            [sys.executable, str(REPO / "bench" / "_ray_data_bare.py"), address, str(data),
             str(bench.home / "bare"), bench.base_url, "2", str(args.concurrency), str(args.rows_per_part)],
            env,
        )  # fmt: skip
        print(
            f"   2 nodes, 2 actors: labelwise {args.rows / ours2['wall']:8.0f} rows/s "
            f"({ours2['wall']:.1f} s); "
            f"bare Ray Data {args.rows / bare['wall']:8.0f} rows/s ({bare['wall']:.1f} s): "
            f"{bare['wall'] / ours2['wall']:.2f}x"
        )

        print(f"\n3. one rate limit for the cluster (--rpm {args.rpm:.0f}, 2 nodes, 2 actors)")
        limited = bench.home / "limited.parquet"
        generate(limited, args.rpm_rows, args.rpm_rows, seed=7)
        stats(bench.base_url, reset=True)
        run_watched(bench.score("limited", limited, *on_cluster, "--rpm", str(args.rpm)), env)
        per_second = {int(k): v for k, v in stats(bench.base_url)["per_second"].items()}
        first, last = min(per_second), max(per_second)
        windows = [
            sum(per_second.get(s, 0) for s in range(start, start + 10)) for start in range(first, last - 8)
        ]
        allowed = args.rpm / 6
        print(
            f"   {sum(per_second.values())} requests over {last - first + 1} s; the busiest 10-second window "
            f"held {max(windows)} against {allowed:.0f} allowed: {max(windows) / allowed - 1:+.1%}"
        )

        print("\n5. an embedding classifier on Ray")
        texts = bench.home / "yelp.parquet"
        pq.write_table(pa.table({"text": pa.array(yelp_texts(2000))}), texts)
        report = json.loads(
            run_watched(
                [*CLI, "batch", "score", embedding_tag(bench.home, env), str(texts), "--out",
                 str(bench.home / "embed"), "--rows-per-part", "200", "--json", *on_cluster], env,
            )["stdout"]
        )  # fmt: skip
        print(
            f"   {report['rows']} rows in 10 parts on {report['actors']} actors: "
            f"{report['models_loaded']} model loads"
        )

        kill_both(bench, on_cluster)
        address = ray_cluster(1, env, cpus=4)
        ours1 = run_watched(bench.score("ray1", data, "--engine", "ray", "--address", address, *ACTORS), env)
        print(
            f"\n2b. 1 node, 2 actors: labelwise on Ray {ours1['wall']:.1f} s against the local engine's "
            f"{local_wall:.1f} s: {ours1['wall'] / local_wall:.2f}x"
        )
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True)


def kill_both(bench: Bench, on_cluster: list[str] | None) -> None:
    args = bench.args
    print(f"\n4. SIGKILL half way, then the same command again ({args.kill_rows:,} rows, all distinct)")
    parts = -(-args.kill_rows // args.rows_per_part)
    engines = [("local", [])] + ([("ray", on_cluster)] if on_cluster else [])
    for seed, (engine, extra) in enumerate(engines):
        data = bench.home / f"kill-{engine}.parquet"
        generate(data, args.kill_rows, args.kill_rows, seed=100 + seed)
        command = bench.score(f"kill-{engine}", data, *extra)
        stats(bench.base_url, reset=True)
        run_watched(command, bench.env, parts=bench.home / f"kill-{engine}", kill_at_part=parts // 2)
        before = stats(bench.base_url)["requests"]
        run_watched(command, bench.env)
        sent = stats(bench.base_url)["requests"]
        duplicated, lost = check_once(bench.home / f"kill-{engine}", args.kill_rows)
        print(
            f"   {engine:5}: killed after {parts // 2} of {parts} parts; output rows lost {lost}, duplicated "
            f"{duplicated}; texts sent twice {sent - args.kill_rows} (a part is {args.rows_per_part} rows; "
            f"{before} sent before the kill)"
        )


def yelp_texts(n: int) -> list[str]:
    import pandas as pd

    return pd.read_csv(REPO / "data" / "yelp-sample.csv")["text"].head(n).tolist()  # type: ignore[no-any-return]


def embedding_tag(home: Path, env: dict[str, str]) -> str:
    import pandas as pd

    train = home / "train.csv"
    pd.read_csv(REPO / "data" / "yelp-sample.csv").tail(300).to_csv(train, index=False)
    result = subprocess.run(
        [*CLI, "train-embedding", str(train), "--name", "bench-embed", "--label-col", "stars", "--json"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return str(json.loads(result.stdout)["artifact_tag"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rows-per-part", type=int, default=10_000)
    parser.add_argument("--kill-rows", type=int, default=100_000)
    parser.add_argument("--rpm", type=float, default=3000)
    parser.add_argument("--rpm-rows", type=int, default=2500)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-parts-bench-"))
    # A cluster local to the bench: no token authentication between its processes.
    env = {**os.environ, "LABELWISE_HOME": str(home / "labelwise-home"), "RAY_AUTH_MODE": "disabled"}
    data = home / "rows.parquet"
    started = time.perf_counter()
    generate(data, args.rows, args.distinct)
    print(
        f"generated {data.stat().st_size / 2**20:.0f} MiB of Parquet in {time.perf_counter() - started:.1f} s"
    )
    backend, base_url = fake_backend(args.latency)
    bench = Bench(args, home, base_url, env)
    try:
        local_wall = local_vs_loop(bench, data)
        if args.skip_ray:
            kill_both(bench, None)
        else:
            on_ray(bench, data, local_wall)
    finally:
        backend.terminate()
        backend.wait()


if __name__ == "__main__":
    main()
