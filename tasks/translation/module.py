"""The translation task: tokens → Embed → Encode → memory → Predict (a decoder that Attends) → tokens."""

from __future__ import annotations

from typing import Optional

from eeap.config.registry import EMBED, ENCODE, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from eeap.embed.base import TokenEmbedder
from eeap.encode.base import SequenceEncoder
from eeap.model.seq2seq import Seq2Seq, Seq2SeqTask, TokenInputs
from eeap.model.task import AttendSection, build_predict
from eeap.predict.base import SequenceDecoder
from eeap.tasks.translation.info import TranslationInfo

DEFAULT_ATTEND = {"type": "additive"}


@TASK.register("translation")
class TranslationTask(Seq2SeqTask):
    """Sequence-to-sequence translation with attention; exact match, BLEU and chrF (sacrebleu), attention heatmaps.
    The sequence-to-sequence core (``eeap.model.seq2seq.Seq2SeqTask``) with token inputs (``TokenInputs``): what is this
    task's own is its builder and its data.
    """

    info_class = TranslationInfo
    monitor = ("val/exact_match", "max")

    @classmethod
    def from_config(
        cls,
        info: TranslationInfo,
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
        attention_penalty: NonNegativeFloat = 0.0,
    ) -> TranslationTask:
        """The builder: the ``model`` section's parts, built and wired.

        ::

            source tokens ─ embed (token embedding; vocab_size from the data)
                          ─ encode (sequence encoder; input_dim = embed.output_dim) ─ memory
            memory ─ predict (sequence decoder; vocab_size, encoder_dim = encode.output_dim) ─ target tokens
                        └ attend (attention; query_dim from the decoder, key_dim = encode.output_dim), once per
                          slot the decoder asks for (one, or one per Transformer layer)

        # Parameters
        embed, encode, predict, attend: the four parts' sections (``attend: none`` for no attention).
        optim: optimizer section (see ``eeap.model.task.OptimConfig``).
        label_smoothing: cross-entropy label smoothing.
        beam_size, length_penalty: decoding at test time (validation decodes greedily).
        max_output_len: longest output (default max_tgt_len).
        plot_examples: validation examples whose attention is plotted each validation.
        attention_penalty: λ of the doubly stochastic regularisation of Show, Attend and Tell,
            λ · mean_i (1 − Σ_t α_ti)², which asks every source position to get about one unit of attention.
        """
        embedding = EMBED.build(embed, "model.embed", role=TokenEmbedder, vocab_size=len(info.source))
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
            bleu_tokenize="13a",
        )
        inputs = TokenInputs(info.source, info.max_src_len)
        return cls(info, embedding, encoder, seq2seq, inputs, optim, plot_examples)
