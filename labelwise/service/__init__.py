"""Service: the BentoML service for online prediction, metrics and feedback capture.

Imports ``labelwise.packaging`` only, never ``batch`` or ``evaluation``, so the serving image
stays small.
"""

__all__: list[str] = []
