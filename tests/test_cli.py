"""The ``labelwise`` command, run as a user runs it: a real process."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, yelp_sample

needs_local = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="needs the 'local' extra"
)


def labelwise(
    *args: str, check: bool = True, cwd: Path = REPO, columns: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command; ``columns`` sets the terminal width its tables are laid out for."""
    env = None if columns is None else {**os.environ, "COLUMNS": str(columns)}
    result = subprocess.run(
        [sys.executable, "-m", "labelwise.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"labelwise {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_package_twice_gives_the_same_version() -> None:
    first = json.loads(labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"), "--json").stdout)
    second = labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"))
    assert first["tag"].startswith("yelp-zero-shot:")
    assert f"{first['tag']} (already packaged, unchanged)" in second.stdout


def test_models_list_show_export_import_delete(tmp_path: Path) -> None:
    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-fine-tuned.yaml"), "--json").stdout)["tag"]
    listed = json.loads(labelwise("models", "list", "yelp-fine-tuned", "--json").stdout)
    assert [row["tag"] for row in listed] == [tag]
    shown = json.loads(labelwise("models", "show", "yelp-fine-tuned", "--json").stdout)
    assert shown["tag"] == tag and shown["model"].startswith("ft:gpt-4o-mini")
    assert shown["spec"]["technique"]["provenance"]["job_id"] == "ftjob-yelp5v1"
    exported = labelwise("models", "export", tag, "--out", str(tmp_path)).stdout.strip()
    assert Path(exported).is_file()
    assert "deleted" in labelwise("models", "delete", tag, "--yes").stdout
    assert json.loads(labelwise("models", "list", "yelp-fine-tuned", "--json").stdout) == []
    assert tag in labelwise("models", "import", exported).stdout
    assert "yelp-fine-tuned" in labelwise("models", "list").stdout


@pytest.mark.slow
def test_export_and_import_take_paths_relative_to_the_working_folder(tmp_path: Path) -> None:
    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"), "--json").stdout)["tag"]
    into_folder = labelwise("models", "export", tag, "--out", "./artifacts", cwd=tmp_path)
    version = tag.split(":")[1]
    assert Path(into_folder.stdout.strip()) == tmp_path / "artifacts" / f"yelp-zero-shot-{version}.bentomodel"
    named = labelwise("models", "export", tag, "--out", "./artifacts/zero.bentomodel", cwd=tmp_path)
    assert Path(named.stdout.strip()) == tmp_path / "artifacts" / "zero.bentomodel"
    default = Path(labelwise("models", "export", tag, cwd=tmp_path).stdout.strip())
    assert default.parent == tmp_path and default.is_file()
    missing = labelwise("models", "export", tag, "--out", "./nowhere/x.bentomodel", check=False, cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    # The version is in the store already: importing it again changes nothing and succeeds.
    again = labelwise("models", "import", "./artifacts/zero.bentomodel", cwd=tmp_path)
    assert f"already in the store, unchanged: {tag}" in again.stdout
    absent = labelwise("models", "import", "./absent.bentomodel", check=False, cwd=tmp_path)
    assert absent.returncode == 2 and "absent.bentomodel is not a file" in absent.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["package", "examples/missing.yaml"], "spec file examples/missing.yaml does not exist"),
        (["models", "show", "never-packaged"], "no artifact never-packaged in the model store"),
        (["predict", "Not A Tag", "hello"], "artifact name 'Not A Tag' is not valid"),
        (["predict", "yelp-zero-shot"], "give either a TEXT argument or --input FILE"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    result = labelwise(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_spec_lists_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ntask: {labels: [a, a]}\ntechnique: {kind: zero_shot, template: 'no text here'}\n"
    )
    result = labelwise("package", str(bad), check=False)
    assert result.returncode == 2
    assert "task.labels: label 'a' duplicates 'a'" in result.stderr
    assert "technique.template: template must contain {text}" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_text_column_names_the_columns(tmp_path: Path) -> None:
    labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"))
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,5\n")
    result = labelwise("predict", "yelp-zero-shot", "--input", str(data), check=False)
    assert result.returncode == 2
    assert "has no column 'text'; columns: review, stars (choose one with --text-col)" in result.stderr


@pytest.mark.slow
@needs_local
@pytest.mark.local_llm
def test_predict_one_text_on_the_local_model() -> None:
    labelwise("package", str(EXAMPLES / "yelp-few-shot.yaml"))
    result = labelwise(
        "predict", "yelp-few-shot:latest", "The food was cold and the waiter was rude.", "--json"
    )
    prediction = json.loads(result.stdout)
    assert prediction["label"] in {"1", "2", "3", "4", "5"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert prediction["artifact_tag"].startswith("yelp-few-shot:")
    human = labelwise("predict", "yelp-few-shot", "Best tacos in town!")
    assert "label:" in human.stdout and "probability" in human.stdout


@needs_local
@pytest.mark.local_llm
def test_predict_a_file_on_the_local_model(tmp_path: Path) -> None:
    labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"))
    sample = yelp_sample(3, seed=3, max_chars=400)
    path = tmp_path / "sample.jsonl"
    sample.rename(columns={"text": "review"}).to_json(path, orient="records", lines=True)
    rows = json.loads(
        labelwise("predict", "yelp-zero-shot", "--input", str(path), "--text-col", "review", "--json").stdout
    )
    assert [row["text"] for row in rows] == sample["text"].tolist()
    assert all(row["label"] in {"1", "2", "3", "4", "5", None} for row in rows)


def test_serve_refuses_an_unknown_artifact_before_starting() -> None:
    result = labelwise("serve", "never-packaged:0123456789abcdef", "--port", "3999", check=False)
    assert result.returncode == 2
    assert "no artifact never-packaged:0123456789abcdef" in result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    assert labelwise("--version").stdout.startswith("labelwise ")


BAD_FILES = {
    "latin1.csv": "text,stars\nCaf\xe9 cr\xe8me was great,5\n".encode("latin-1"),
    "empty.csv": b"",
    "header-only.csv": b"text,stars\n",
    "broken.jsonl": b'{"text": "fine", "stars": 5}\n{"text": \n',
    "not-parquet.parquet": b"text,stars\nhello,5\n",
}
BAD_FILE_MESSAGES = {
    "latin1.csv": "is not UTF-8 text (byte 0xe9 at offset 14)",
    "empty.csv": "is empty",
    "header-only.csv": "has no rows",
    "broken.jsonl": "is not readable as JSON Lines",
    "not-parquet.parquet": "is not readable as Parquet",
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_file_that_is_not_a_table_is_a_labelwise_error(name: str, tmp_path: Path) -> None:
    from labelwise.core import LabelwiseError, read_table

    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    with pytest.raises(LabelwiseError, match=re.escape(BAD_FILE_MESSAGES[name])):
        read_table(path)


@pytest.mark.parametrize("command", ["predict", "eval", "batch score"])
def test_bad_files_are_one_line_errors_in_every_command(command: str, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(BAD_FILES["latin1.csv"])
    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-zero-shot.yaml"), "--json").stdout)["tag"]
    args = {
        "predict": ["predict", tag, "--input", str(path)],
        "eval": ["eval", tag, str(path), "--label-col", "stars"],
        "batch score": ["batch", "score", tag, str(path), "--out", str(tmp_path / "out.csv")],
    }[command]
    result = labelwise(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert BAD_FILE_MESSAGES["latin1.csv"] in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
@needs_local
@pytest.mark.local_llm
def test_local_status_names_each_detached_server() -> None:
    labelwise("local", "start", "--logprobs")
    try:
        status = labelwise("local", "status").stdout
        assert "logprobs server (--logprobs): running at http://127.0.0.1:" in status
        assert "generation server: not running" in status
    finally:
        labelwise("local", "stop", "--logprobs")
    assert labelwise("local", "status").stdout.count("not running") == 2


@needs_local
@pytest.mark.local_llm
def test_the_readme_shows_the_version_a_clone_packages() -> None:
    """README lines are copied and pasted: the example's version there must be the real one."""
    shown = set(re.findall(r"yelp-few-shot:([0-9a-f]{16})", (REPO / "README.md").read_text()))
    tag = json.loads(labelwise("package", str(EXAMPLES / "yelp-few-shot.yaml"), "--json").stdout)["tag"]
    assert shown == {tag.split(":")[1]}


def test_compare_takes_the_same_labels_in_another_order(tmp_path: Path) -> None:
    from labelwise.packaging import ClassifierSpec, package
    from tests.conftest import fake_server_spec
    from tests.fake_openai import FakeOpenAIServer

    def answer(prompt: str) -> str:
        return "negative" if "bad" in prompt else "positive"

    rows = [
        f"{word} meal {i},{label}"
        for i in range(10)
        for word, label in (("bad", "negative"), ("good", "positive"))
    ]
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    with FakeOpenAIServer(answer=answer) as fake:
        a, _ = package(fake_server_spec("cmp-a", fake.base_url))
        spec_b = fake_server_spec("cmp-b", fake.base_url).model_dump(mode="json", exclude_none=True)
        spec_b["task"]["labels"] = ["positive", "negative", "neutral"]
        b, _ = package(ClassifierSpec.from_dict(spec_b))
        result = labelwise(
            "eval", "compare", str(a.tag), str(b.tag), str(data), "--json", "--n-resamples", "200"
        )
    tests = {row["metric"]: row for row in json.loads(result.stdout)["tests"]}
    assert tests["accuracy"]["a"] == tests["accuracy"]["b"] == 1.0


def test_the_progress_rate_leaves_cached_items_out() -> None:
    """90 rows from the cache in no time and 10 computed in ~0.2 s run at ~50 rows/s, not ~500."""
    import time

    from labelwise.cli._progress import ProgressBar

    bar = ProgressBar("scoring", total=100)
    bar.advance(90, cached=True)
    assert bar.per_s is None  # nothing computed yet: no rate, no time left
    time.sleep(0.2)
    bar.advance(10)
    assert bar.per_s is not None and bar.per_s < 10 / 0.2 * 1.05
