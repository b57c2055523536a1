"""Errors that carry a one-line message meant for an operator."""

from __future__ import annotations


class RpiError(Exception):
    """Base class: str(error) is a complete one-line message for the user."""


class StoreError(RpiError):
    """The database cannot be used: missing, not SQLite, or a schema we don't know."""


class StoreUnavailable(StoreError):
    """The store is closed, overloaded, or failed at run time (answered as A700)."""


class ImportFailed(RpiError):
    """An import was refused; nothing was written. Names the file and the record."""


class ConfigError(RpiError):
    """An invalid configuration value or key."""
