"""Feedback durability at volume: tens of thousands of concurrent writes, then a SIGKILL.

For each store (SQLite by default; PostgreSQL with --postgres-url or LABELWISE_TEST_POSTGRES_URL):
1. N concurrent feedback writes to ``labelwise serve`` with 2 workers: acknowledged, stored, and
   writes per second; a second round on the same predictions must not add records;
2. N more writes, and SIGKILL of every server process once a third are acknowledged; restart,
   and count acknowledged writes missing from the store (must be 0).

    .venv/bin/python bench/reliability/feedback_durability.py [--writes 20000] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ holds the harness
from labelwise.packaging import ClassifierSpec, package
from tests.serve_process import ServeProcess, seed_predictions, send_feedback, stored_feedback


def run(db_url: str, tag: str, home: Path, writes: int, concurrency: int) -> None:
    steady, crashed = seed_predictions(db_url, tag, writes), seed_predictions(db_url, tag, writes)
    kind = db_url.split(":", 1)[0]
    server = ServeProcess(tag, db_url=db_url, log=home / f"{kind}.log", workers=2)
    with server:
        started = time.perf_counter()
        acknowledged, failures = send_feedback(server.url, steady, concurrency=concurrency)
        elapsed = time.perf_counter() - started
        repeated = send_feedback(server.url, steady, concurrency=concurrency)[1]
        stored = stored_feedback(db_url, steady)
        print(
            f"{kind}: {len(acknowledged)}/{writes} acknowledged ({failures} failed) in {elapsed:.1f} s "
            f"= {writes / elapsed:.0f} writes/s; stored {len(stored)} after a second round of {writes} "
            f"repeats ({repeated} failed)",
            flush=True,
        )
        killer = threading.Thread(target=server.kill)

        def kill_midway(count: int) -> None:
            if count == writes // 3:
                killer.start()

        acknowledged, failures = send_feedback(
            server.url, crashed, concurrency=concurrency, on_acknowledged=kill_midway
        )
        killer.join()
    with ServeProcess(tag, db_url=db_url, log=home / f"{kind}-restart.log"):
        stored = stored_feedback(db_url, crashed)
    lost = acknowledged - stored
    print(
        f"{kind} SIGKILL: {len(acknowledged)} acknowledged before the kill, {failures} refused or cut, "
        f"{len(stored)} stored after restart, acknowledged but lost: {len(lost)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--postgres-url", default=os.environ.get("LABELWISE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="labelwise-durability-"))
    os.environ.update(BENTOML_HOME=str(home / "bentoml"), LABELWISE_HOME=str(home / "labelwise"))
    # Feedback never calls the backend: the artifact only has to exist.
    spec = ClassifierSpec.from_dict(
        {
            "name": "durability",
            "task": {"labels": ["negative", "neutral", "positive"]},
            "technique": {"kind": "zero_shot", "template": "Sentiment ({labels}) of: {text}\nAnswer:"},
            "backend": {"provider": "openai_compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
        }
    )
    tag = str(package(spec)[0].tag)
    run(f"sqlite:///{home / 'feedback.db'}", tag, home, args.writes, args.concurrency)
    if args.postgres_url:
        run(args.postgres_url, tag, home, args.writes, args.concurrency)
    else:
        print('postgresql: skipped (no --postgres-url; `eval "$(bash .ci/postgres.sh)"` starts one)')


if __name__ == "__main__":
    main()
