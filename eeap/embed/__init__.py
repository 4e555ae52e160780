"""Embed: tokens, characters, image patches or CNN feature grids → vectors."""

from eeap.embed import cnn, grid, patch, token

__all__ = ["cnn", "grid", "patch", "token"]
