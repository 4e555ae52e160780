"""Embed: tokens, characters, image patches or CNN feature grids → vectors."""

from eeap.embed import cnn, patch, token

__all__ = ["cnn", "patch", "token"]
