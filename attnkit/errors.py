"""User-facing errors: each message names the bad value and the fix, on one line."""

from __future__ import annotations


class AttnkitError(Exception):
    """Base class for every error attnkit reports to a user (the CLI prints the message alone)."""


class RegistryError(AttnkitError, KeyError):
    """An unknown kind or component name, or a name registered twice."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(AttnkitError, ValueError):
    """A value that does not fit: wrong type, unknown option, shapes that do not agree."""


class PluginError(AttnkitError, ImportError):
    """A plugin file or module that does not exist or fails to import."""


class DataError(AttnkitError, OSError):
    """Missing or unreadable data: a path that does not exist, an image that cannot be decoded."""


class TrainingError(AttnkitError, RuntimeError):
    """Training that went wrong: a loss or weights that are no longer finite numbers."""
