"""``ArtifactTag``: the ``name:version`` of a classifier artifact."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..core import SpecError

__all__ = ["ArtifactTag", "validate_name"]

# The model store's own rule for names and versions: lower case, digits and ``-._``,
# starting and ending with a letter or digit, at most 63 characters.
_PART = re.compile(r"^[a-z0-9](?:[-._a-z0-9]{0,61}[a-z0-9])?$")
LATEST = "latest"


def validate_name(value: str, *, what: str = "name") -> str:
    """Return ``value`` if it is a valid artifact name or version, else raise ``SpecError``."""
    if not _PART.match(value):
        raise SpecError(
            f"{what} {value!r} is not valid: use lower-case letters, digits and '-', '.', '_', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return value


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class ArtifactTag:
    """The tag of an artifact: a name and a version (``None`` until resolved).

    Tags order by name, then version, so sorted listings group versions of one classifier.

    >>> str(ArtifactTag.from_str("yelp-few-shot:3f9a0c1d2e4b5a67"))
    'yelp-few-shot:3f9a0c1d2e4b5a67'
    """

    name: str
    version: str | None = None

    @classmethod
    def from_str(cls, value: str) -> ArtifactTag:
        """Parse ``name`` or ``name:version``; raise ``SpecError`` with what to fix."""
        name, sep, version = value.strip().partition(":")
        if sep and not version:
            raise SpecError(f"tag {value!r} has an empty version: write 'name' or 'name:version'")
        validate_name(name, what="artifact name")
        if version:
            validate_name(version, what="artifact version")
        return cls(name, version or None)

    @property
    def is_latest(self) -> bool:
        return self.version in (None, LATEST)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version else self.name

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ArtifactTag):
            return NotImplemented
        return (self.name, self.version or "") < (other.name, other.version or "")
