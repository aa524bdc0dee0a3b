"""Scoring in parts: bounded reads, Parquet parts with a manifest, resume by part, URLs, Ray actors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest

from labelwise.batch import batch_score
from labelwise.core import free_port
from labelwise.packaging import package
from tests.batch.conftest import answer
from tests.conftest import REPO, fake_server_spec
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise


def _tag(fake: FakeOpenAIServer, name: str) -> str:
    artifact, _ = package(
        fake_server_spec(name, fake.base_url, template="Sentiment of: {text}", max_retries=1)
    )
    return str(artifact.tag)


def _rows(n: int) -> pd.DataFrame:
    """n rows with a true label; the rows past the first two thirds repeat the first texts."""
    texts = [f"visit {j} was {'bad' if j % 4 == 0 else 'good'}" for j in (i % (2 * n // 3) for i in range(n))]
    truth = ["negative" if "bad" in t else "positive" for t in texts]
    return pd.DataFrame({"id": range(n), "text": texts, "truth": truth})


def test_a_directory_of_parts_reads_as_one_table(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _tag(fake, "parts-dir")
    rows = _rows(45)
    rows.to_parquet(tmp_path / "in.parquet", row_group_size=8)  # row groups that straddle parts
    out = tmp_path / "scored"
    report = json.loads(
        labelwise("batch", "score", tag, str(tmp_path / "in.parquet"), "--out", str(out),
                  "--rows-per-part", "10", "--json").stdout
    )  # fmt: skip
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-0000{i}.parquet" for i in range(5)]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert [p["rows"] for p in manifest["parts"]] == [10, 10, 10, 10, 5]
    assert manifest["summary"]["rows"] == report["rows"] == 45
    # Repeats across parts come from the cache: 30 distinct texts, 30 requests.
    assert fake.requests == 30 and report["scored"] == 30 and report["from_cache"] == 15
    table = pads.dataset(out).to_table().to_pandas()  # _job.json and _manifest.json are skipped
    pd.testing.assert_frame_equal(table[["id", "text", "truth"]], rows)
    assert (table["label"] == table["truth"]).all() and (table["status"] == "ok").all()
    assert pd.read_parquet(out)["id"].tolist() == list(range(45))
    # The analyses read the directory as they read a file.
    rai = labelwise("batch", "rai", str(out), "--label-col", "truth", "--out", str(tmp_path / "rai.html"),
                    "--probes", "0", "--json")  # fmt: skip
    assert json.loads(rai.stdout)["overall"]["rows"] == 45
    drift = labelwise("batch", "drift", "--current", str(out), "--reference", str(out),
                      "--out", str(tmp_path / "drift.html"), "--json")  # fmt: skip
    assert not any(check["drifted"] for check in json.loads(drift.stdout)["checks"])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_one_file_is_assembled_from_the_parts(fake: FakeOpenAIServer, tmp_path: Path, suffix: str) -> None:
    tag = _tag(fake, "parts-file")
    path = tmp_path / "in.csv"
    # Cells that change type down the file, and a leading zero: kept as the text they are.
    frame = _rows(23).assign(code=["007"] * 20 + ["n/a", "12", "x"])
    frame.to_csv(path, index=False)
    out = tmp_path / f"out{suffix}"
    labelwise("batch", "score", tag, str(path), "--out", str(out), "--rows-per-part", "5")
    if suffix == ".csv":
        scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    elif suffix == ".jsonl":
        scored = pd.read_json(out, lines=True, dtype=False)
    else:
        scored = pd.read_parquet(out)
    assert scored["id"].astype(int).tolist() == list(range(23))
    assert scored["code"].tolist() == ["007"] * 20 + ["n/a", "12", "x"]
    assert (scored["label"] == frame["truth"]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", f"out{suffix}"]  # no parts left


def test_resume_by_part_after_sigkill(tmp_path: Path) -> None:
    rows, per_part = 60, 10
    with FakeOpenAIServer(answer=answer, latency_s=0.1) as fake:
        tag = _tag(fake, "parts-resume")
        frame = pd.DataFrame(
            {"id": range(rows), "text": [f"text {i} is {'bad' if i % 2 else 'fine'}" for i in range(rows)]}
        )
        path, out = tmp_path / "in.jsonl", tmp_path / "scored"
        frame.to_json(path, orient="records", lines=True)
        command = [sys.executable, "-m", "labelwise.cli", "batch", "score", tag, str(path), "--out", str(out),
                   "--concurrency", "2", "--no-cache", "--rows-per-part", str(per_part)]  # fmt: skip
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.parquet"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
        assert 2 <= len(before) < rows // per_part and not (out / "_manifest.json").exists()
        sent_before_kill = fake.requests
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        resumed = fake.requests - sent_before_kill
    scored = pd.read_parquet(out)
    assert scored["id"].tolist() == list(range(rows))  # nothing lost, nothing duplicated
    assert (scored["status"] == "ok").all()
    assert all((out / name).stat().st_mtime_ns == mtime for name, mtime in before.items())  # kept as written
    assert resumed <= rows - per_part * len(before)  # the written parts were not scored again
    assert not list(out.glob(".*"))  # no checkpoint or partial file left


def test_parts_of_another_job_are_not_mixed_in(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    tag = _tag(fake, "parts-guard")
    path, out = tmp_path / "in.csv", tmp_path / "scored"
    _rows(12).to_csv(path, index=False)
    labelwise("batch", "score", tag, str(path), "--out", str(out), "--rows-per-part", "5")
    written = sorted(p.name for p in out.iterdir())
    result = labelwise(
        "batch", "score", tag, str(path), "--out", str(out), "--rows-per-part", "4", check=False
    )
    assert result.returncode == 2 and "holds parts of another job (its rows_per_part differ)" in result.stderr
    assert "Traceback" not in result.stderr and sorted(p.name for p in out.iterdir()) == written
    header_only = tmp_path / "empty.csv"
    header_only.write_text("text\n")
    result = labelwise("batch", "score", tag, str(header_only), "--out", str(tmp_path / "e"), check=False)
    assert result.returncode == 2 and "has no rows" in result.stderr and not (tmp_path / "e").exists()


def test_a_cluster_that_is_not_there_is_named_at_once(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the 'ray' extra")
    path = tmp_path / "in.csv"
    _rows(3).to_csv(path, index=False)
    nobody = f"127.0.0.1:{free_port()}"
    tag = _tag(fake, "parts-no-ray")
    result = labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "out"), "--engine", "ray",
                       "--address", nobody, check=False)  # fmt: skip
    assert result.returncode == 2 and "no Ray cluster at --address" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_input_and_output_behind_urls(fake: FakeOpenAIServer) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    with memory.open("/lake/in.parquet", "wb") as stream:
        _rows(14).to_parquet(stream)
    result = batch_score(_tag(fake, "parts-url"), "memory://lake/in.parquet", "memory://lake/scored",
                         rows_per_part=6)  # fmt: skip
    assert result.summary.rows == 14
    assert sorted(memory.ls("/lake/scored", detail=False)) == [
        "/lake/scored/_job.json", "/lake/scored/_manifest.json", "/lake/scored/part-00000.parquet",
        "/lake/scored/part-00001.parquet", "/lake/scored/part-00002.parquet",
    ]  # fmt: skip
    with memory.open("/lake/scored/part-00002.parquet", "rb") as stream:
        assert pd.read_parquet(stream)["id"].tolist() == [12, 13]


@pytest.mark.slow
def test_ray_actors_write_the_local_engines_parts(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the 'ray' extra")
    tag = _tag(fake, "parts-ray")
    path = tmp_path / "in.parquet"
    _rows(50).to_parquet(path, row_group_size=7)
    labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "here"), "--rows-per-part", "8")
    on_ray = json.loads(
        labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "ray"), "--rows-per-part", "8",
                  "--engine", "ray", "--actors", "2", "--no-cache", "--json").stdout
    )  # fmt: skip
    assert on_ray["rows"] == 50 and on_ray["actors"] == 2
    compared = ["id", "text", "label", "status", "artifact_tag"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "here")[compared], pd.read_parquet(tmp_path / "ray")[compared]
    )


@pytest.mark.slow
def test_one_rate_limit_for_every_actor(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the 'ray' extra")
    with FakeOpenAIServer(answer=answer, contract=False) as fake:
        tag = _tag(fake, "parts-ray-rpm")
        path = tmp_path / "in.parquet"
        pd.DataFrame({"text": [f"ticket {i}" for i in range(90)]}).to_parquet(path)
        labelwise("batch", "score", tag, str(path), "--out", str(tmp_path / "out"), "--rows-per-part", "15",
                  "--engine", "ray", "--actors", "2", "--rpm", "1200")  # fmt: skip
        times = sorted(fake.request_times)
    # 20 a second for the whole cluster (a quarter second's worth ahead at most): 90 requests take
    # over 4 s. Each actor with a limit of its own would have sent them in about 2 s.
    assert len(times) == 90 and times[-1] - times[0] >= 3.6
    assert max(sum(t <= start + 1 for t in times[i:]) for i, start in enumerate(times)) <= 36


@pytest.mark.slow
def test_an_embedding_model_is_loaded_once_per_actor(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the 'ray' extra")
    pytest.importorskip("sentence_transformers", reason="needs the 'embeddings' extra")
    from labelwise.backends import BackendSpec
    from labelwise.training import train_embedding
    from tests.conftest import yelp_sample

    data = tmp_path / "train.csv"
    yelp_sample(120, seed=1).to_csv(data, index=False)
    minilm = BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    trained = train_embedding(data, name="parts-embed", embedder=minilm, label_col="stars", seed=0,
                              families=("logistic_regression",), folds=2)  # fmt: skip
    path = tmp_path / "in.parquet"
    yelp_sample(60, seed=2)[["text"]].to_parquet(path)
    report = json.loads(
        labelwise("batch", "score", str(trained.artifact.tag), str(path), "--out", str(tmp_path / "out"),
                  "--rows-per-part", "6", "--engine", "ray", "--actors", "2", "--json").stdout
    )  # fmt: skip
    # Ten parts on two actors: two loads, where a model per part would have been ten.
    assert report["rows"] == 60 and report["actors"] == 2 and report["models_loaded"] == 2
    assert (pd.read_parquet(tmp_path / "out")["status"] == "ok").all()
