"""Embed: tokens, characters, image patches or CNN feature grids → vectors."""

from eeap.embed import token

__all__ = ["token"]
