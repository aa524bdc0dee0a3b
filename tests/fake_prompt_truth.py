"""A ticket-routing task whose truth is encoded, for the fake provider: the test or bench sets which
few-shot examples help and which hurt, so each candidate prompt's true accuracy is known."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

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
