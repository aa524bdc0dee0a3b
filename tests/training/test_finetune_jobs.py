"""``labelwise finetune start / import / sweep`` against the fake fine-tuning API.

The commands run as a user runs them (a subprocess), the fake provider in this process, so
the tests can kill a command mid-job, interrupt it, and count every call the provider saw.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.fake_finetune_api import OPTIMUM
from tests.fake_openai import FakeOpenAIServer
from tests.test_cli import labelwise

KEY_ENV = "LABELWISE_TEST_OPENAI_KEY"
HYPERPARAMETERS = "n_epochs=3,batch_size=8,learning_rate_multiplier=1.0"


@pytest.fixture
def yelp(tmp_path: Path) -> Path:
    """300 seeded Yelp reviews with their stars."""
    frame = pd.read_csv(REPO / "data" / "yelp-sample.csv").sample(n=300, random_state=7)
    path = tmp_path / "yelp.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, yelp: Path) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    stars = {str(t).strip(): str(s) for t, s in pd.read_csv(yelp)[["text", "stars"]].itertuples(index=False)}
    with FakeOpenAIServer() as server:
        server.fine_tuning.truth = lambda prompt: stars.get(prompt.strip())
        yield server


@pytest.fixture
def spec(fake: FakeOpenAIServer, tmp_path: Path) -> Path:
    """The Yelp fine-tuned example, calling the fake provider."""
    document = yaml.safe_load((REPO / "examples" / "yelp-fine-tuned.yaml").read_text())
    document["name"] = f"yelp-ft-{tmp_path.name[-12:].lower().replace('_', '-')}"
    document["backend"] |= {
        "base_url": fake.base_url,
        "api_key_env": KEY_ENV,
        "max_retries": 1,
        "timeout_s": 5,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _start_args(yelp: Path, spec: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "start", str(yelp), "--spec", str(spec), "--out", str(out), "--label-col", "stars",
            "--hyperparameters", HYPERPARAMETERS, "--suffix", "yelp", "--poll-interval", "0.05",
            "--concurrency", "8", "--json", *extra]  # fmt: skip


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen([sys.executable, "-m", "labelwise.cli", *args], cwd=REPO, text=True, **pipes)


def _wait_until_running(fake: FakeOpenAIServer, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not any(job["status"] == "running" for job in fake.fine_tuning.jobs.values()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(0.02)


def test_start_killed_mid_job_resumes_the_same_job_then_packages_evaluates_and_imports(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path
) -> None:
    fake.fine_tuning.seconds_per_example = 0.006  # 45 steps of 8: about 2 s of training to be killed in
    out = tmp_path / "run"
    process = _spawn(_start_args(yelp, spec, out))
    _wait_until_running(fake, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert json.loads((out / "job.json").read_text())["job_id"] == "ftjob-1"

    result = json.loads(labelwise(*_start_args(yelp, spec, out)).stdout)

    calls = fake.fine_tuning.calls
    assert result["resumed"] and result["job_id"] == "ftjob-1"
    assert calls["fine_tuning.jobs.create"] == 1 and calls["files.create"] == 2  # no second job or upload
    provenance = result["spec"]["technique"]["provenance"]
    assert result["spec"]["technique"]["model_id"] == "ft:gpt-4o-mini-2024-07-18:org-fake:yelp:ftjob-1"
    assert provenance["hyperparameters"] == OPTIMUM
    assert (provenance["training_rows"], provenance["validation_rows"]) == (120, 120)
    training = (out / "train.chat.jsonl").read_bytes()
    assert provenance["training_file_sha256"] == hashlib.sha256(training).hexdigest()
    assert provenance["trained_tokens"] > 0 and provenance["estimated_cost_usd"] > 0
    assert provenance["created_at"] and provenance["finished_at"]
    assert (
        0.5 < provenance["reported_metrics"]["accuracy"] < 1
        and "step 45" in provenance["reported_metrics_source"]
    )
    # Measured on the 60 held-out rows that training never saw: the fake serves 90% accuracy here.
    card = result["eval_card"]
    assert card["dataset"]["evaluated"] == 60 and card["metrics"]["accuracy"]["value"] > 0.75
    assert {"mae", "rmse"} <= set(card["metrics"])
    assert any(f.startswith("accuracy: reported") for f in result["gap"]["findings"])
    assert json.loads((out / "gap.json").read_text())["test"]["rows"] == 60
    shown = json.loads(labelwise("models", "show", result["tag"], "--json").stdout)
    assert shown["eval_card"]["metrics"]["accuracy"] == card["metrics"]["accuracy"]

    imported = json.loads(labelwise("finetune", "import", "ftjob-1", "--spec", str(spec), "--json").stdout)
    assert imported["spec"]["technique"]["provenance"] == provenance
    assert imported["tag"] == result["tag"] and not imported["created"]  # the same artifact


def test_a_lost_reply_to_job_creation_makes_no_second_job(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path
) -> None:
    fake.fine_tuning.lose_next_create_reply()  # the job is made; its creator hears HTTP 500
    result = json.loads(labelwise(*_start_args(yelp, spec, tmp_path / "run")).stdout)
    calls = fake.fine_tuning.calls
    assert result["job_id"] == "ftjob-1" and len(fake.fine_tuning.jobs) == 1
    assert calls["fine_tuning.jobs.create"] == 1 and calls["fine_tuning.jobs.list"] == 1
    assert result["eval_card"]["dataset"]["evaluated"] == 60


@pytest.mark.parametrize(("answer", "status"), [("y", "cancelled"), ("n", "running")])
def test_start_interrupted_asks_whether_to_cancel_the_remote_job(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path, answer: str, status: str
) -> None:
    fake.fine_tuning.seconds_per_example = 0.025
    process = _spawn(_start_args(yelp, spec, tmp_path / "run", "--validation-share", "0.25"))
    _wait_until_running(fake, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(f"{answer}\n", timeout=60)
    assert process.returncode == 130, stderr
    assert "Cancel fine-tuning job ftjob-1" in stderr and "Traceback" not in stderr
    assert fake.fine_tuning.jobs["ftjob-1"]["status"] == status
    validation = (tmp_path / "run" / "validation.chat.jsonl").read_text().splitlines()
    assert len(validation) == 60  # a quarter of the 240 rows left after the 60 test rows


def test_a_failed_job_is_reported_and_packages_nothing(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path
) -> None:
    fake.fine_tuning.fail_next_job("the training run diverged")
    failed = labelwise(*_start_args(yelp, spec, tmp_path / "run"), check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "fine-tuning job ftjob-1 failed: the training run diverged" in failed.stderr
    refused = labelwise("finetune", "import", "ftjob-1", "--spec", str(spec), check=False)
    assert refused.returncode == 2 and "failed: the training run diverged" in refused.stderr
    unknown = labelwise("finetune", "import", "ftjob-404", "--spec", str(spec), check=False)
    assert unknown.returncode == 2 and "ftjob-404" in unknown.stderr and "Traceback" not in unknown.stderr
    name = yaml.safe_load(spec.read_text())["name"]
    assert name not in labelwise("models", "list").stdout

    # Run again, the recorded job is followed (and still failed); --restart makes a new one.
    again = labelwise(*_start_args(yelp, spec, tmp_path / "run"), check=False)
    assert (
        again.returncode == 2
        and "--restart" in again.stderr
        and fake.fine_tuning.calls["fine_tuning.jobs.create"] == 1
    )
    restarted = json.loads(labelwise(*_start_args(yelp, spec, tmp_path / "run", "--restart")).stdout)
    assert restarted["job_id"] == "ftjob-2" and not restarted["resumed"]
    assert fake.fine_tuning.calls["files.create"] == 2  # the recorded files were used again


def test_start_refuses_a_spec_that_is_not_fine_tuned_and_bad_hyperparameters(
    yelp: Path, spec: Path, tmp_path: Path
) -> None:
    zero_shot_spec = str(REPO / "examples" / "yelp-zero-shot.yaml")
    zero_shot = labelwise("finetune", "start", str(yelp), "--spec", zero_shot_spec, "--label-col", "stars",
                          "--out", str(tmp_path / "a"), check=False)  # fmt: skip
    assert zero_shot.returncode == 2 and "give a fine_tuned spec" in zero_shot.stderr
    bad = labelwise(*_start_args(yelp, spec, tmp_path / "b", "--hyperparameters", "n_epochs=-1"), check=False)
    assert bad.returncode == 2 and "n_epochs" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "b").exists()


def _sweep_file(tmp_path: Path, spec: Path, yelp: Path) -> Path:
    sweep: dict[str, Any] = {
        "name": "yelp-ft-sweep",
        "base": str(spec),
        "data": {"path": str(yelp), "label_col": "stars", "sample": 300, "seed": 0},
        "space": {
            "n_epochs": {"grid": [1, 3]},
            "learning_rate_multiplier": {"grid": [1.0, 4.0]},
            "batch_size": {"grid": [8, 32]},
        },
        "search": "grid",
        "max_concurrent_jobs": 2,
        "early_stopping": {"grace_epochs": 1, "reduction_factor": 2},
        "poll_interval_s": 0.05,
        "n_resamples": 200,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_sweep_stops_poor_jobs_early_finds_the_optimum_and_packages_it(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path
) -> None:
    # An epoch of 120 examples takes 0.75 s: a stopped trial's job is cancelled long before its end.
    fake.fine_tuning.seconds_per_example = 0.006
    # The provider allows 2 active jobs and the sweep runs 4 trials at once: the others wait their
    # turn (HTTP 429 on creation), none fails.
    fake.fine_tuning.max_active_jobs = 2
    out = tmp_path / "sweep"
    path = _sweep_file(tmp_path, spec, yelp)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "max_concurrent_jobs": 4}))
    sweep = str(path)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = ["--out", str(out), "--package-best", "--mlflow", tracking, "--json"]
    result = json.loads(labelwise("finetune", "sweep", sweep, *options).stdout)

    board = result["leaderboard"]
    assert len(board) == 8
    stopped = [row for row in board if row["status"] == "stopped early"]
    assert len(stopped) >= 2
    jobs = fake.fine_tuning.jobs
    assert all(jobs[row["job_id"]]["status"] == "cancelled" for row in stopped)
    assert len(jobs) == 8 and sum(job["status"] == "cancelled" for job in jobs.values()) == len(stopped)
    best = board[0]
    assert {k: best[k] for k in OPTIMUM} == OPTIMUM and best["status"] == "succeeded"
    assert fake.fine_tuning.calls["files.create"] == 2  # the files were uploaded once for all trials
    assert fake.fine_tuning.peak_running <= 2  # the provider's quota
    assert {row["status"] for row in board} <= {"succeeded", "stopped early"}  # no trial failed
    shown = json.loads(labelwise("models", "show", result["packaged"], "--json").stdout)
    assert shown["spec"]["technique"]["model_id"] == best["model_id"] and shown["eval_card"] is not None
    report = (out / "report.html").read_text()
    assert report.count("<img") == 2 and "stopped early" in report

    import mlflow

    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(experiment_names=["labelwise-sweep-yelp-ft-sweep"])
    assert len(runs) == 8 and set(runs["tags.status"]) == {"succeeded", "stopped early"}
    best_run = runs[runs["tags.job_id"] == best["job_id"]].iloc[0]
    measured = float(best["measured_weighted_f1"].split()[0])
    assert best_run["metrics.weighted_f1"] == pytest.approx(measured, abs=1e-3)
    curve = mlflow.MlflowClient().get_metric_history(best_run["run_id"], "valid_loss")
    assert len(curve) == best["steps"]
    print("\nsweep calls:", dict(fake.fine_tuning.calls))
    print(pd.DataFrame(board).drop(columns=["model_id", "trial"]).to_string())


def _azure_job(fake: FakeOpenAIServer, yelp: Path, version: str) -> tuple[str, bytes]:
    """A job run on the fake's Azure mode, as a person runs it there, and its training file."""
    import openai

    rows = pd.read_csv(yelp).head(40)
    lines = [
        {"messages": [{"role": "system", "content": "You rate Yelp reviews. Answer with the number of stars "
                       "only: 1, 2, 3, 4 or 5."}, {"role": "user", "content": text},
                      {"role": "assistant", "content": str(stars)}]}
        for text, stars in rows[["text", "stars"]].itertuples(index=False)
    ]  # fmt: skip
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    # Closed at once: the SDK client and its resources form a cycle that only a later garbage
    # collection would free, with the sockets still open.
    with openai.AzureOpenAI(
        azure_endpoint=fake.base_url.removesuffix("/v1"),
        api_key="sk-test-not-a-real-key",
        api_version=version,
    ) as azure:
        training = azure.files.create(file=("train.jsonl", content), purpose="fine-tune")
        while azure.files.retrieve(training.id).status != "processed":  # Azure validates it first
            time.sleep(0.05)
        job = azure.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id, seed=3)
        deadline = time.monotonic() + 30
        while azure.fine_tuning.jobs.retrieve(job.id).status != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return job.id, content


def test_an_azure_fine_tuned_model_is_imported_deployed_and_classifies(
    fake: FakeOpenAIServer, spec: Path, yelp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, version = fake.base_url.removesuffix("/v1"), "2024-10-21"
    job_id, content = _azure_job(fake, yelp, version)
    document = yaml.safe_load(spec.read_text())
    document["backend"] = {"provider": "azure_openai", "base_url": endpoint, "api_version": version,
                           "api_key_env": KEY_ENV}  # fmt: skip
    azure_spec = tmp_path / "azure.yaml"
    azure_spec.write_text(yaml.safe_dump(document))
    args = ["finetune", "import", job_id, "--spec", str(azure_spec), "--test", str(yelp),
            "--label-col", "stars", "--sample", "20", "--json"]  # fmt: skip

    # Azure calls a model only through a deployment: refused before anything is packaged.
    refused = labelwise(*args, check=False)
    assert refused.returncode == 2 and "--deploy NAME" in refused.stderr and "Traceback" not in refused.stderr
    # Asked to deploy without the resource's coordinates: exactly what to run.
    refused = labelwise(*args, "--deploy", "yelp-ft", check=False)
    assert refused.returncode == 2 and "az cognitiveservices account deployment create" in refused.stderr
    assert "--deployment-name yelp-ft" in refused.stderr and fake.deployments.calls["put"] == 0

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "0000-sub")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "labelwise-rg")
    monkeypatch.setenv("AZURE_MANAGEMENT_TOKEN", "eyJ-test-token")
    monkeypatch.setenv("LABELWISE_AZURE_MANAGEMENT_URL", endpoint)
    imported = json.loads(labelwise(*args, "--deploy", "yelp-ft").stdout)

    technique, backend = imported["spec"]["technique"], imported["spec"]["backend"]
    model_id = fake.fine_tuning.jobs[job_id]["fine_tuned_model"]
    assert technique["model_id"] == model_id and ".ft-" in model_id  # Azure's form
    assert backend["provider"] == "azure_openai" and backend["deployment"] == "yelp-ft"
    assert fake.deployments.deployments["yelp-ft"]["model"] == model_id
    provenance = technique["provenance"]
    assert provenance["job_id"] == job_id and provenance["seed"] == 3 and provenance["training_rows"] == 40
    # Azure reads back -1: chosen by the provider, and not said.
    assert not any(provenance["hyperparameters"].values())
    assert provenance["training_file_sha256"] == hashlib.sha256(content).hexdigest()
    assert provenance["reported_metrics"]["accuracy"] > 0  # validation_mean_token_accuracy, from base64
    # Classified through the deployment: every test row got a label from the fine-tuned model.
    card = imported["eval_card"]
    assert card["dataset"]["evaluated"] == 20 and card["metrics"]["accuracy"]["value"] > 0.5
    assert not [w for w in card["warnings"] if "fail" in w.lower()]
    for secret in ("sk-test", "eyJ-test-token"):
        assert secret not in json.dumps(imported)


def test_a_sweep_file_with_mistakes_is_refused_with_what_to_fix(
    spec: Path, yelp: Path, tmp_path: Path
) -> None:
    path = _sweep_file(tmp_path, spec, yelp)
    base = yaml.safe_load(path.read_text())
    for change, message in [
        ({"space": {"warmup": {"grid": [1]}}}, "are not swept"),
        ({"space": {"n_epochs": {"choice": [1, 3]}}}, "use search random"),
        ({"search": "optuna"}, "use choice instead of grid"),
        ({"space": {"n_epochs": {"grid": [1], "choice": [2]}}}, "exactly one of"),
    ]:
        path.write_text(yaml.safe_dump(base | change))
        refused = labelwise("finetune", "sweep", str(path), "--out", str(tmp_path / "out"), check=False)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("search", ["random", "optuna"])
def test_sampled_sweeps_search_the_space_and_stop_poor_jobs(
    fake: FakeOpenAIServer, yelp: Path, spec: Path, tmp_path: Path, search: str
) -> None:
    fake.fine_tuning.seconds_per_example = 0.006
    path = _sweep_file(tmp_path, spec, yelp)
    document = yaml.safe_load(path.read_text()) | {"search": search, "num_samples": 8}
    document["space"] = {
        "n_epochs": {"randint": [1, 4]},
        "learning_rate_multiplier": {"loguniform": [0.3, 3.0]},
        "batch_size": {"choice": [8, 16, 32]},
    }
    path.write_text(yaml.safe_dump(document))
    result = json.loads(
        labelwise("finetune", "sweep", str(path), "--out", str(tmp_path / "out"), "--json").stdout
    )
    board = result["leaderboard"]
    assert len(board) == 8 and len({json.dumps([r["n_epochs"], r["batch_size"]]) for r in board}) > 2
    assert any(row["status"] == "stopped early" for row in board)
    assert all(
        fake.fine_tuning.jobs[r["job_id"]]["status"] == "cancelled"
        for r in board
        if r["status"] == "stopped early"
    )
    assert fake.fine_tuning.peak_running <= 2
    measured = [float(r["measured_weighted_f1"].split()[0]) for r in board if r["rank"]]
    assert measured == sorted(measured, reverse=True)
