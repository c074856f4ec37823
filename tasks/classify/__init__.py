"""Sequence classification: the `classify` task over labelled texts read as text pairs (text, label), and the
built-in `listops` data (registered on import, through the `attnkit.plugins` entry point)."""

from attnkit.tasks.classify import listops, task  # noqa: F401  (registration)
