"""Backdrop's exception hierarchy: every error a user can cause derives from BackdropError.

The CLI turns any BackdropError into one line on stderr and exit code 2; anything else is a bug.
"""

from __future__ import annotations


class BackdropError(Exception):
    """Base of every error that the CLI reports as one line."""


class ConfigError(BackdropError):
    """A YAML key or CLI flag is unknown or has a bad value."""


class CapacityError(ConfigError):
    """A server already runs as many streams as its config allows (``serve.max_streams``)."""


class SourceError(BackdropError):
    """A source cannot be opened or read."""


class SinkError(BackdropError):
    """A sink cannot be opened or written."""


class BackgroundError(BackdropError):
    """A background spec is malformed or its file cannot be read."""


class ModelError(BackdropError):
    """A model file is missing, unreadable or does not match its contract."""


class RuntimeUnavailable(BackdropError):
    """An inference runtime is not installed or cannot run here (names what to install)."""


class ExportError(BackdropError):
    """Exporting a Keras model to another format failed."""
