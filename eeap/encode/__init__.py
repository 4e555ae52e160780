"""Encode: recurrent and Transformer encoders over embedded sequences."""

from eeap.encode import rnn, transformer

__all__ = ["rnn", "transformer"]
