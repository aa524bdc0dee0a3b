"""No command leaves the local model server behind, however the command is stopped."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, yelp_sample
from tests.test_cli import labelwise

pytestmark = [
    pytest.mark.slow,
    pytest.mark.local_llm,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the 'local' extra"),
]


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, parent = fields[0], int(fields[1])
        if parent == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
def test_the_local_server_ends_with_the_command(signum: signal.Signals, tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    yelp_sample(200, seed=11, max_chars=300)[["text", "stars"]].to_csv(data, index=False)
    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"), "--json").stdout)["tag"]
    command = subprocess.Popen(
        [sys.executable, "-m", "labelwise.cli", "eval", tag, str(data), "--label-col", "stars"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait(lambda: _children(command.pid), 120), "the command started no local server"
        (server,) = _children(command.pid)
        time.sleep(2)  # starting up or scoring: either way it must not outlive the command
        command.send_signal(signum)
        command.wait(timeout=60)
        assert _wait(lambda: not _alive(server), 15), f"the local server outlived a {signum.name}"
    finally:
        command.kill()
        command.wait()
