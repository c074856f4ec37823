"""ViT image classification: image data sources and the `vit` task (registered on import)."""

from attnkit.tasks.vit import data, task  # noqa: F401
