"""Built-in tasks. Each registers itself through attnkit's public API, like any plugin (entry point `attnkit.plugins`)."""
