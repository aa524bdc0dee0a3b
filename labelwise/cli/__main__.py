"""``python -m labelwise.cli``."""

from . import main

main()
