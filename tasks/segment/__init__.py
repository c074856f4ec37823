"""Semantic segmentation: label-map data sources and the `segment` task (registered on import)."""

from attnkit.tasks.segment import data, task  # noqa: F401
