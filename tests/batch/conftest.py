"""What the batch tests share: a fake backend that calls a text negative when it says "bad"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_openai import FakeOpenAIServer


def answer(prompt: str) -> str:
    return "negative" if "bad" in prompt else "positive"


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(answer=answer) as server:
        yield server
