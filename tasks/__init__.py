"""The task modules and their data (installed as ``eeap.tasks``): translation, classification, segmentation and
captioning. Each folder holds ``module.py`` (the task: its builder and training steps) and ``data.py`` (its data
sources); the registries find them by name without importing them."""
