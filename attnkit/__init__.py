"""attnkit: compose transformers from an attention variant, a number of heads and a positional encoding.

Importing it registers the built-in components (`attnkit.nn`); the built-in tasks and installed plugins load on the
registry's first look-up.
"""

import attnkit.nn  # noqa: F401  (registers attention, pos_enc, norm, ffn, copy, model)
from attnkit.api import compose, fit, load
from attnkit.errors import AttnkitError, ConfigError, DataError, PluginError, RegistryError, TrainingError
from attnkit.plugins import load_plugins
from attnkit.registry import available, build, build_spec, get, register

__version__ = "0.1.0"

__all__ = [
    "AttnkitError",
    "ConfigError",
    "DataError",
    "PluginError",
    "RegistryError",
    "TrainingError",
    "available",
    "build",
    "build_spec",
    "compose",
    "fit",
    "get",
    "load",
    "load_plugins",
    "register",
    "__version__",
]
