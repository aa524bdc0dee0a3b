"""Monitoring: drift checks, accuracy estimated from confidence, the golden-set canary and
feedback summaries."""

import lazy_loader

# Each name loads its module on first use, so a command imports only what it runs.
# The names and their modules are listed once, in __init__.pyi (which type checkers read).
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
