"""Language modelling: the `lm` task (a decoder-only model, next-token prediction, generation) and the built-in
`mqar` data (registered on import, through the `attnkit.plugins` entry point)."""

from attnkit.tasks.lm import mqar, task  # noqa: F401  (registration)
