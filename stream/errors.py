"""Errors of the streaming side; all are BackdropErrors, so the CLI reports them as one line."""

from __future__ import annotations

from model.errors import BackdropError


class ConfigError(BackdropError):
    """A YAML key or CLI flag is unknown or has a bad value (exit code 2)."""


class SourceError(BackdropError):
    """A source cannot be opened or read."""


class SinkError(BackdropError):
    """A sink cannot be opened or written."""


class BackgroundError(BackdropError):
    """A background spec is malformed or its file cannot be read."""
