"""Turning a model's free-text answer into a label, or into a reason why not.

The parser never guesses: an answer that names no label, or names several without one
standing first, gives ``None`` and a reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from ..core import Reason
from ._outcomes import Outcome

__all__ = ["LabelParser", "as_label", "normalize"]

_EDGE_PUNCTUATION = " \t\r\n\"'`*_.,;:!?()[]{}<>«»“”‘’"


def normalize(text: str) -> str:
    """Case-fold, collapse whitespace and strip quotes and punctuation from both ends."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(_EDGE_PUNCTUATION)


class LabelParser:
    """Maps completions to labels through the label names and their synonyms."""

    def __init__(self, labels: Sequence[str], synonyms: Mapping[str, str] | None = None) -> None:
        self.labels = list(labels)
        self._by_key: dict[str, str] = {normalize(label): label for label in self.labels}
        for synonym, label in (synonyms or {}).items():
            self._by_key.setdefault(normalize(synonym), label)
        # Longest first, so "five stars" wins over "five" when both are keys.
        self._keys = sorted(self._by_key, key=len, reverse=True)
        self._word = {key: re.compile(rf"(?<![\w]){re.escape(key)}(?![\w])") for key in self._keys}

    def parse(self, output: str) -> Outcome:
        """The label an output names; none, with the reason, when it names none or several."""
        text = normalize(output)
        if not text:
            return Outcome(None, None, Reason.EMPTY_OUTPUT, "empty output")
        if text in self._by_key:
            return Outcome(self._by_key[text])
        for key in self._keys:
            if self._word[key].match(text):
                return Outcome(self._by_key[key])
        found = sorted(
            {self._by_key[key] for key in self._keys if self._word[key].search(text)},
            key=self.labels.index,
        )
        if len(found) == 1:
            return Outcome(found[0])
        if not found:
            return Outcome(None, None, Reason.NO_LABEL, f"no label in output {_preview(output)}")
        message = f"ambiguous output {_preview(output)} names {', '.join(found)}"
        return Outcome(None, None, Reason.AMBIGUOUS, message)


def _preview(output: str, limit: int = 80) -> str:
    flat = " ".join(output.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def as_label(value: Any) -> str:
    """A true label read from data as a label string."""
    # Stars read from CSV arrive as integers (or floats when a column has gaps): 5 -> "5".
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
