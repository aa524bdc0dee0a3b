"""The stored scikit-learn head of an embedding classifier (skops, never a pickle).

skops writes no pickle: loading rebuilds only types it is told to trust, so a head file can never
run code. Only scikit-learn's, numpy's and scipy's types are trusted; a head that needs any other
type is refused. (The artifact's hash check runs before this, as well.)
"""

from __future__ import annotations

from typing import Any

from ._errors import ArtifactIntegrityError

__all__ = ["HEAD_FILE", "dump_head", "load_head"]

HEAD_FILE = "head.skops"


def dump_head(estimator: Any) -> bytes:
    import skops.io as sio

    return bytes(sio.dumps(estimator))


def load_head(data: bytes, *, where: str) -> Any:
    """Rebuild a head, refusing any type outside scikit-learn's and numpy's."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "scipy."))]
    if foreign:
        raise ArtifactIntegrityError(f"{where}: {HEAD_FILE} holds types that are not trusted: {foreign}")
    return sio.loads(data, trusted=untrusted)
