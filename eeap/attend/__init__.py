"""Attend: alignment functions, each returning ``(context, weights)``, and the skip gates of U-Nets.

The roles are in ``base.py``; each other module holds one component, registered with ``@ATTEND.register``."""
