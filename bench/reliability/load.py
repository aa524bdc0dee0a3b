"""A long load run against ``labelwise serve`` with 2 workers, driven by locust.

locust (headless, ``locustfile.py`` beside this script) keeps USERS clients posting to
/classify for the whole run, against a fast fake backend; this script reads the resident memory
of every server process at the end of each minute. A leak shows as RSS that keeps climbing;
caches filling show as a rise that levels off. The verdict is the growth over the last 10
minutes (or the last half of a shorter run): flat means under 5 %.

    .venv/bin/pip install -e '.[bench]'   # locust
    .venv/bin/python bench/reliability/load.py [--minutes 20] [--users 32] [--latency 0.005]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ holds the harness
from labelwise.core import free_port
from labelwise.packaging import ClassifierSpec, package
from tests.serve_process import ServeProcess

HERE = Path(__file__).resolve().parent
PEERS = str(HERE.parent / "_peers.py")


def rss_mib(pids: list[int]) -> list[float]:
    return [psutil.Process(pid).memory_info().rss / 2**20 for pid in pids]


def anon_mib(pids: list[int]) -> list[float]:
    """Private anonymous memory (heap, arenas): what a leak grows. RSS also counts file pages,
    such as the SQLite store's shared WAL index, which both workers map and touch as it grows."""
    values = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("RssAnon:"))
        values.append(int(kib) / 1024)
    return values


def mib(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def locust(url: str, seconds: float, users: int, csv_prefix: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{int(seconds)}s",
        "--host", url, "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(csv_prefix: Path) -> dict[str, str]:
    with open(f"{csv_prefix}_stats.csv", newline="") as stats:
        return next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.005, help="fake backend latency, seconds")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-load-"))
    os.environ.update(BENTOML_HOME=str(home / "bentoml"), LABELWISE_HOME=str(home / "labelwise"))
    backend_port = free_port()
    backend = subprocess.Popen([sys.executable, PEERS, "backend", str(backend_port), str(args.latency)])
    base_url = f"http://127.0.0.1:{backend_port}/v1"
    try:
        artifact, _ = package(
            ClassifierSpec.from_dict(
                {
                    "name": "load",
                    "task": {"labels": ["negative", "neutral", "positive"]},
                    "technique": {"kind": "zero_shot", "template": "Sentiment ({labels}): {text}\nAnswer:"},
                    "backend": {"provider": "openai_compatible", "model": "fake-model", "base_url": base_url},
                }
            )
        )
        db = f"sqlite:///{home / 'predictions.db'}"
        with ServeProcess(str(artifact.tag), db_url=db, log=home / "serve.log", workers=2) as server:
            warm = locust(server.url, 30, args.users, home / "warmup")  # imports, pools, caches
            warm.wait()
            pids = server.worker_pids()
            readings, anon = [rss_mib(pids)], [anon_mib(pids)]
            print(
                f"{args.minutes} min, {args.users} locust users, backend {args.latency * 1000:g} ms, "
                f"2 workers; after warm-up (MiB): RSS {mib(readings[0])}; anonymous {mib(anon[0])}",
                flush=True,
            )
            run = locust(server.url, args.minutes * 60, args.users, home / "run")
            started = time.monotonic()
            for minute in range(1, args.minutes + 1):
                time.sleep(max(0.0, started + minute * 60 - time.monotonic()))
                readings.append(rss_mib(pids))
                anon.append(anon_mib(pids))
                print(
                    f"minute {minute:2d} (MiB): RSS {mib(readings[-1])}; anonymous {mib(anon[-1])}",
                    flush=True,
                )
            run.wait(timeout=120)
            stats = summary(home / "run")
            print(
                f"locust: {stats['Request Count']} requests, {stats['Failure Count']} failures, "
                f"{float(stats['Requests/s']):.1f} req/s, p50 {stats['50%']} ms, p99 {stats['99%']} ms"
            )
            window = min(10, args.minutes // 2)
            for what, series in (("RSS", readings), ("anonymous memory", anon)):
                before, after = series[-1 - window], series[-1]
                growth = [100 * (a - b) / b for b, a in zip(before, after, strict=True)]
                verdict = "flat" if max(growth) < 5 else "GROWING"
                print(
                    f"{what} growth over the last {window} min per process: "
                    + ", ".join(f"{g:+.1f} %" for g in growth)
                    + f" ({verdict}: under 5 % is flat)"
                )
    finally:
        backend.terminate()
        backend.wait(timeout=30)


if __name__ == "__main__":
    main()
