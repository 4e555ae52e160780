"""Captioning: Show, Attend and Tell over CNN feature grids; formula images → LaTeX markup."""

from tasks.captioning import data, module

__all__ = ["data", "module"]
