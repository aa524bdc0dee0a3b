"""Output helpers shared by the CLI's command modules."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["JsonOption", "console", "parse_since", "print_json"]

console = Console(soft_wrap=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def parse_since(value: str | None, *, option: str = "--since") -> datetime | None:
    """An ISO date or time from the command line; naive times are taken as UTC."""
    from .packaging import LabelwiseError

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise LabelwiseError(f"{option} {value!r} is not an ISO date or time (e.g. 2026-11-01)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
