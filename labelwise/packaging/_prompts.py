"""Prompt templates with declared variables.

Templates use ``{name}`` placeholders. Only identifiers in braces are placeholders, so JSON or
other braces in a prompt stay as they are, and input text is never interpreted as a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._errors import MissingVariables

if TYPE_CHECKING:
    from ._spec import Example

__all__ = ["Template", "render_examples", "render_label_descriptions", "render_labels", "truncate"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Template:
    """A prompt template; ``vars()`` lists its variables and ``render`` fills them all."""

    def __init__(self, source: str) -> None:
        self.source = source

    def vars(self) -> list[str]:
        """Variables in order of first appearance."""
        return list(dict.fromkeys(_PLACEHOLDER.findall(self.source)))

    def render(self, values: Mapping[str, str]) -> str:
        missing = [name for name in self.vars() if name not in values]
        if missing:
            raise MissingVariables(f"template needs a value for {', '.join(missing)}")
        # One pass over the source: a value that itself contains "{text}" stays literal.
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.source)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def render_labels(labels: Sequence[str]) -> str:
    """The ``{labels}`` variable: the label set as a comma-separated list."""
    return ", ".join(labels)


def render_label_descriptions(labels: Sequence[str], descriptions: Mapping[str, str]) -> str:
    """The ``{label_descriptions}`` variable: one ``label: description`` line per label."""
    return "\n".join(f"{label}: {descriptions.get(label, '')}".rstrip() for label in labels)


def render_examples(
    examples: Sequence[Example], template: Template, *, separator: str, max_chars: int | None
) -> str:
    """The ``{examples}`` variable of a few-shot prompt, examples in the given order."""
    return separator.join(
        template.render({"text": truncate(e.text, max_chars), "label": e.label}) for e in examples
    )


def truncate(text: str, max_chars: int | None) -> str:
    """Cut ``text`` to ``max_chars`` characters (``None`` keeps it whole)."""
    return text if max_chars is None else text[:max_chars]
