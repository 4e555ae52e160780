"""Translation: the date translator (default model), number words, and the user's parallel data."""

from tasks.translation import data, module

__all__ = ["data", "module"]
