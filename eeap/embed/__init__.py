"""Embed: tokens, characters, image patches or CNN feature grids → vectors.

The roles are in ``base.py``; each other module holds one component, registered with ``@EMBED.register``."""
