"""What a model knows of its data (``DataInfo``): vocabularies, classes, image sizes. It travels inside checkpoints
and export folders, and a trained model is rebuilt from it without the data module (nor Lightning)."""

from __future__ import annotations

import abc


class DataInfo(abc.ABC):
    """What a model needs to know of its data (vocabularies, classes, image sizes). It travels inside checkpoints:
    ``state()`` gives plain values that ``torch.load(weights_only=True)`` accepts, ``from_state`` rebuilds it."""

    @abc.abstractmethod
    def state(self) -> dict:
        """Plain values (numbers, strings, lists, dicts) from which ``from_state`` rebuilds this."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, state: dict) -> DataInfo:
        """The inverse of ``state``."""
