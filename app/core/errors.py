"""Errors that cross package boundaries. The web layer maps them to HTTP statuses."""
from __future__ import annotations


class BeidouError(Exception):
    """Base of the project's own errors."""


class DatabaseUnavailable(BeidouError):
    """The database cannot be reached or timed out; the caller should retry later."""

    retry_after_s = 5


class NotFound(BeidouError):
    """The thing does not exist, or is not visible to the caller (never says which)."""


class Conflict(BeidouError):
    """The request clashes with the current state."""


class Forbidden(BeidouError):
    """The caller may not do this."""
