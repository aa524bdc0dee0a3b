"""labelwise: ship text classifiers built on large language models."""

import importlib.metadata as _metadata

try:
    __version__ = _metadata.version("labelwise")
except _metadata.PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
