"""``bentoml build`` of the service carries the artifact it was built for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labelwise.packaging import ClassifierArtifact
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_bento_records_the_pinned_artifact(served_artifact: ClassifierArtifact) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "--arg", f"model={served_artifact.tag}",
         "--output", "tag"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    bento_tag = result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = bento_tag.split(":")
    bento = Path(os.environ["BENTOML_HOME"]) / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    models = [m["tag"] for service in info["services"] for m in service["models"]]
    assert models == [str(served_artifact.tag)]
    assert info["args"] == {"model": str(served_artifact.tag)}
    assert (bento / "src" / "labelwise" / "service" / "_service.py").is_file()
    assert not (bento / "src" / "tests").exists()
