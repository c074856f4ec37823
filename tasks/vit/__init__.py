"""ViT image classification: data sources and the `vit` task."""
