"""The base of every error labelwise raises on purpose (the areas derive their own from it)."""

from __future__ import annotations

__all__ = ["LabelwiseError", "SpecError"]


class LabelwiseError(Exception):
    """Base class of every error labelwise raises on purpose."""

    def __str__(self) -> str:
        # KeyError subclasses would otherwise print their message with quotes.
        return str(self.args[0]) if self.args else self.__class__.__name__


class SpecError(LabelwiseError, ValueError):
    """Raised when a spec (a classifier's, a backend's, an experiment's) fails validation.

    The message names each bad field and says what to fix.
    """
