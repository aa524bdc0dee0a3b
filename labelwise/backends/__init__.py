"""Backends: the model providers a classifier calls (OpenAI, Azure OpenAI, OpenAI-compatible
servers, the embedded llama.cpp server, sentence-transformers), with retries and rate limits."""

import lazy_loader

# Each name loads its module on first use, so a command imports only what it runs.
# The names and their modules are listed once, in __init__.pyi (which type checkers read).
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
