"""Encode: recurrent and Transformer encoders over embedded sequences, and image encoders (feature pyramids)."""

from eeap.encode import identity, image, rnn, transformer

__all__ = ["identity", "image", "rnn", "transformer"]
