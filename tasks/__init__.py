"""Built-in tasks: each registers itself through attnkit's public API, like any plugin (entry point)."""
