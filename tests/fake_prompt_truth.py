"""A ticket-routing task whose truth is encoded, for the fake provider: the test or bench sets which
few-shot examples help and which hurt, so each candidate prompt's true accuracy is known."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

TEAMS = ["billing", "shipping", "returns"]
TEMPLATE = "Send the ticket to a team.\n\n{examples}\n\nTicket: {text}\nTeam: "
PLAIN = "Send the ticket to billing, shipping or returns.\n\nTicket: {text}\nTeam: "
EXAMPLE = "Ticket: {text}\nTeam: {label}"
BASE_ACCURACY = 0.5
EFFECT = 0.12  # a helpful example adds this to the chance of a right answer; a harmful one takes it away


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Truth:
    """Tickets with their teams; a third of the texts help as examples, a third hurt.

    The answer to a prompt is right with the chance its examples give, drawn from a hash of
    the prompt's texts: the same prompt always gets the same answer.
    """

    teams: dict[str, str]

    @classmethod
    def make(cls, rows: int) -> Truth:
        return cls({f"ticket {i:04d}: order {i * 7919 % 10007}": TEAMS[i % 3] for i in range(rows)})

    def effect(self, example: str) -> int:
        return {0: 1, 1: -1, 2: 0}[int(_unit("effect", example) * 3)]

    def accuracy(self, examples: list[str]) -> float:
        chance = BASE_ACCURACY + EFFECT * sum(self.effect(e) for e in examples)
        return min(0.95, max(0.05, chance))

    def answer(self, prompt: str) -> str:
        tickets = re.findall(r"^Ticket: (.*)$", prompt, flags=re.M)
        text, examples = tickets[-1], sorted(tickets[:-1])
        right = self.teams[text]
        if _unit(text, *examples) < self.accuracy(examples):
            return right
        return TEAMS[(TEAMS.index(right) + 1 + int(_unit("wrong", text) * 2)) % 3]

    def write_csv(self, path: Path) -> Path:
        """The tickets as a labelled table: ``text``, ``team``."""
        pd.DataFrame({"text": list(self.teams), "team": list(self.teams.values())}).to_csv(path, index=False)
        return path


def tickets_spec(path: Path, base_url: str, **backend: Any) -> Path:
    """A zero-shot spec for the tickets on the fake at ``base_url``, written to ``path``.

    ``backend`` fields replace the defaults (gpt-4o-mini at its list prices).
    """
    spec = {
        "name": path.stem,
        "task": {"labels": TEAMS},
        "technique": {"kind": "zero_shot", "template": PLAIN},
        "backend": {"provider": "openai", "model": "gpt-4o-mini", "base_url": base_url,
                    "usd_per_million_prompt_tokens": 0.15, "usd_per_million_completion_tokens": 0.6,
                    **backend},
        "decoding": {"temperature": 0, "max_tokens": 3},
        "scoring": "generate",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec))
    return path
