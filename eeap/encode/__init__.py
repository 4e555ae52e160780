"""Encode: recurrent and Transformer encoders over embedded sequences, and image encoders (feature pyramids).

The roles are in ``base.py``; each other module holds one or more components, registered with ``@ENCODE.register``."""
