"""The base of every model a person writes (specs, requests): unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Forbids unknown keys, is immutable, and keeps input values out of error messages.

    A typo is an error naming the key; a value is never echoed, since a spec may wrongly hold a
    secret and errors end up in logs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
