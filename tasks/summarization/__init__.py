"""Summarization: the built-in `match_reports` data, ROUGE evaluation beside a lead baseline and the
`summarization` task (registered on import, through the `attnkit.plugins` entry point)."""

from attnkit.tasks.summarization import match_reports, task  # noqa: F401  (registration)
