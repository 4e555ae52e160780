"""Encode: recurrent and Transformer encoders over embedded sequences, and image encoders (feature pyramids)."""

from eeap.encode import image, rnn, transformer

__all__ = ["image", "rnn", "transformer"]
