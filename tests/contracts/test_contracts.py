"""The copies of the providers' API descriptions load, say where they came from, and catch an
exchange that breaks them: the fake's validation is not a check that cannot fail."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.contracts import HERE, contract_for
from tests.fake_openai import FakeOpenAIServer


@pytest.mark.parametrize("name", ["openai", "azure_openai"])
def test_each_description_records_its_source(name: str) -> None:
    info = json.loads((HERE / f"{name}.json").read_text())["info"]
    source = info["x-labelwise-source"]
    assert source["repository"].startswith("https://github.com/") and len(source["commit"]) == 40
    assert contract_for(name).roots


def test_a_request_that_breaks_openais_description_fails_the_fake() -> None:
    fake = FakeOpenAIServer().start()
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
    httpx.post(f"{fake.base_url}/chat/completions", json=body, timeout=10)
    with pytest.raises(AssertionError, match="chat/completions request.*temperature"):
        fake.stop()


def test_an_answer_that_breaks_azures_description_fails_the_fake() -> None:
    """A paused job is a state of Azure's preview api-versions: in GA 2024-10-21 it breaks the contract."""
    fake = FakeOpenAIServer().start()
    fake.fine_tuning.pause_next_job()
    root, version = fake.base_url.removesuffix("/v1"), {"api-version": "2024-10-21"}
    lines = "".join(
        json.dumps(
            {"messages": [{"role": "user", "content": f"t{i}"}, {"role": "assistant", "content": "a"}]}
        )
        + "\n"
        for i in range(12)
    )
    uploaded = httpx.post(f"{root}/openai/files", params=version, files={"file": ("t.jsonl", lines.encode())},
                          data={"purpose": "fine-tune"}, timeout=10).json()  # fmt: skip
    while httpx.get(f"{root}/openai/files/{uploaded['id']}", params=version).json()["status"] != "processed":
        time.sleep(0.05)
    request = {"model": "gpt-4o-mini-2024-07-18", "training_file": uploaded["id"]}
    job = httpx.post(f"{root}/openai/fine_tuning/jobs", params=version, json=request, timeout=10).json()
    deadline = time.monotonic() + 20
    while (
        httpx.get(f"{root}/openai/fine_tuning/jobs/{job['id']}", params=version).json()["status"] != "paused"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(AssertionError, match="fine_tuning/jobs/ftjob-1 answer 200.*paused"):
        fake.stop()
