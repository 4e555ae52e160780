"""Predict: decoders with greedy and beam search (and, per task, classifier and segmentation heads)."""

from eeap.predict import classifier, rnn_decoder, transformer_decoder, unet
from eeap.predict.search import Hypotheses, beam_search

__all__ = ["Hypotheses", "beam_search", "classifier", "rnn_decoder", "transformer_decoder", "unet"]
