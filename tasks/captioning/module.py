"""The captioning task (Show, Attend and Tell): image → Embed (a grid of feature vectors) → Encode → memory →
Predict (a decoder that Attends over the grid) → caption tokens.

It is the sequence-to-sequence core translation uses too (``eeap.model.seq2seq.Seq2SeqTask``): the same decoders, beam
search, losses (hard attention's REINFORCE term, the doubly stochastic regularisation), metrics and predict loop; its
input side is images (``ImageInputs``: masks, reading a line, figures), and its builder and data are its own.
"""

from __future__ import annotations

from typing import Optional

from eeap.config.registry import EMBED, ENCODE, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from eeap.embed.base import ImageEmbedder
from eeap.encode.base import SequenceEncoder
from eeap.model.seq2seq import ImageInputs, Seq2Seq, Seq2SeqTask
from eeap.model.task import AttendSection, build_predict
from eeap.predict.base import SequenceDecoder
from eeap.tasks.captioning.info import CaptioningInfo

DEFAULT_ATTEND = {"type": "additive"}


@TASK.register("captioning")
class CaptioningTask(Seq2SeqTask):
    """Caption images with an attention decoder; BLEU-4 over the caption's tokens, chrF and exact match. The
    sequence-to-sequence core (``eeap.model.seq2seq.Seq2SeqTask``) with image inputs (``ImageInputs``): what is this task's
    own is its builder and its data.
    """

    info_class = CaptioningInfo
    monitor = ("val/bleu", "max")

    @classmethod
    def from_config(
        cls,
        info: CaptioningInfo,
        embed: dict,
        encode: dict,
        predict: dict,
        attend: AttendSection = DEFAULT_ATTEND,
        optim: Optional[dict] = None,
        label_smoothing: Probability = 0.0,
        beam_size: PositiveInt = 1,
        length_penalty: NonNegativeFloat = 0.0,
        max_output_len: Optional[PositiveInt] = None,
        plot_examples: NonNegativeInt = 4,
        attention_penalty: NonNegativeFloat = 1.0,
    ) -> CaptioningTask:
        """The builder: the ``model`` section's parts, built and wired.

        ::

            image ─ embed (image embedding; in_channels, image_size from the data) ─ grid of vectors
                  ─ encode (sequence encoder over the grid; input_dim = embed.output_dim) ─ memory
            memory ─ predict (sequence decoder; vocab_size, encoder_dim = encode.output_dim) ─ caption tokens
                        └ attend (attention; query_dim from the decoder, key_dim = encode.output_dim)

        # Parameters
        embed: ``{type: cnn}`` (a small CNN) or ``{type: image_grid, encoder: {type: smp, name: resnet18}}`` (any
            smp / timm encoder).
        encode: ``{type: identity}`` to attend over the grid itself, or ``rnn`` / ``transformer`` over it.
        attend: the decoder's attention (soft: ``additive`` and the rest; ``hard``); ``none`` is the no-attention
            baseline (the decoder sees the mean feature).
        predict: ``{type: rnn_decoder, cell: lstm, context_gate: true}`` is Show, Attend and Tell's decoder;
            ``transformer_decoder`` the alternative.
        attention_penalty: λ of the doubly stochastic regularisation (default 1, as in the paper).
        optim, label_smoothing, beam_size, length_penalty, max_output_len, plot_examples: as for translation.
        """
        embedding = EMBED.build(
            embed, "model.embed", role=ImageEmbedder, in_channels=info.channels, image_size=list(info.image_size)
        )
        encoder = ENCODE.build(encode, "model.encode", role=SequenceEncoder, input_dim=embedding.output_dim)
        decoder = build_predict(
            predict, attend, SequenceDecoder, vocab_size=len(info.target), encoder_dim=encoder.output_dim
        )
        seq2seq = Seq2Seq(
            decoder,
            info.target,
            max_output_len or info.max_tgt_len,
            label_smoothing,
            beam_size,
            length_penalty,
            attention_penalty,
            bleu_tokenize="none",
        )  # captions: space-separated tokens
        inputs = ImageInputs(info.channels, info.image_size, embedding.grid)
        return cls(info, embedding, encoder, seq2seq, inputs, optim, plot_examples)
