"""The errors of the annotation contracts."""

from __future__ import annotations


class BackendUnavailableError(RuntimeError):
    """A backend whose packages or weight files are missing."""


class MissingWeightsError(BackendUnavailableError):
    """A weight file the user must bring is not where vtonpipe looks for it."""


class AnnotationFailure(Exception):
    """Raised (or returned) by a backend for one item it cannot annotate (no person, fit diverged...).

    ``reason`` is a short machine-readable code recorded in the failures table.
    """

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason
