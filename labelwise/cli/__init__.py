"""The ``labelwise`` command: one module per command group, assembled in ``_app``.

Errors that labelwise raises on purpose are printed as one message, with no traceback, and the
command exits with status 2.
"""

from ._app import app, main

__all__ = ["app", "main"]
