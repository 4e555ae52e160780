"""Classification: attention pooling over tokens (texts) and over image patches or CNN feature grids."""

from tasks.classification import data, module

__all__ = ["data", "module"]
