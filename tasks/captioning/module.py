"""The captioning task (Show, Attend and Tell): image → Embed (a grid of feature vectors) → Encode → memory →
Predict (a decoder that Attends over the grid) → caption tokens.

It is the sequence-to-sequence core translation uses too (``eeap.model.seq2seq.Seq2SeqTask``): the same decoders, beam
search, losses (hard attention's REINFORCE term, the doubly stochastic regularisation), metrics and predict loop; its
input side is images (``ImageInputs``: masks, reading a line, figures), and its builder and data are its own.
"""

from __future__ import annotations

from typing import Any, Optional, cast

from torch import Tensor

from eeap.config.loader import validate
from eeap.config.registry import EMBED, ENCODE, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from eeap.embed.base import ImageEmbedder
from eeap.embed.grid import ImageGrid
from eeap.encode.base import SequenceEncoder
from eeap.errors import ConfigError
from eeap.model.seq2seq import ImageInputs, Seq2Seq, Seq2SeqTask, references_of
from eeap.model.task import AttendSection, FinetuneConfig, build_predict
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import Hypotheses
from eeap.tasks.captioning.info import CaptioningInfo

DEFAULT_ATTEND = {"type": "additive"}


@TASK.register("captioning")
class CaptioningTask(Seq2SeqTask):
    """Caption images with an attention decoder. The sequence-to-sequence core (``eeap.model.seq2seq.Seq2SeqTask``)
    with image inputs (``ImageInputs``): what is this task's own is its builder, its data and its metrics.

    Metrics: the COCO caption evaluation's (``eeap.model.caption_metrics``: BLEU-1…4, ROUGE-L and CIDEr-D at every
    validation, METEOR and SPICE too at test, over all of an image's references, after the PTB tokenizer), and the
    core's (exact match against any reference, token accuracy, sacrebleu's BLEU and chrF). Checkpoints and early
    stopping follow CIDEr-D, as captioning papers select.
    """

    info_class = CaptioningInfo
    monitor = ("val/cider", "max")

    finetune = FinetuneConfig()

    @property
    def frozen_phase(self) -> bool:
        """Whether the image encoder is frozen for part of the run (DDP must then allow parameters without grads)."""
        return self.finetune.freeze

    def parameter_groups(self) -> list[dict[str, Any]]:
        """With ``model.finetune``, the image encoder's parameters are a group of their own (at ``finetune.lr``)."""
        if not self.finetune.freeze and self.finetune.lr is None:
            return super().parameter_groups()
        encoder = list(cast(ImageGrid, self.embed).encoder.parameters())
        own = {id(p) for p in encoder}
        rest = [p for p in self.parameters() if id(p) not in own and p.requires_grad]
        return [{"params": rest}, {"params": encoder, "lr": self.finetune.lr or self.optim.lr}]

    def start_epoch(self, epoch: int) -> None:
        """Freeze the image encoder before ``finetune.from_epoch``, train it from then on."""
        frozen = self.finetune.freeze and (self.finetune.from_epoch is None or epoch < self.finetune.from_epoch)
        if isinstance(self.embed, ImageGrid):
            self.embed.frozen = frozen
            self.embed.train(self.training)

    def new_metrics(self) -> dict[str, Any]:
        from eeap.model.caption_metrics import EVERY_VALIDATION, caption_scores

        return {**self.seq2seq.new_metrics(), **caption_scores(EVERY_VALIDATION)}

    def test_metrics(self) -> dict[str, Any]:
        from eeap.model.caption_metrics import EVERY_VALIDATION, SLOW, caption_scores

        return caption_scores((*EVERY_VALIDATION, *SLOW))

    def metric_names(self) -> list[str]:
        from eeap.model.caption_metrics import EVERY_VALIDATION

        return [*self.seq2seq.metric_names(), *EVERY_VALIDATION]

    def evaluate(self, batch: dict, split: str, metrics: dict[str, Any]) -> tuple[Tensor, Hypotheses]:
        """The core's evaluation, then the caption scores: each image (its name) with its output and references."""
        core = {name: metrics[name] for name in self.seq2seq.SCORES}
        loss, hyps = super().evaluate(batch, split, core)
        outputs = [self.info.target.decode(row) for row in hyps.tokens.tolist()]
        references = references_of(batch)
        for name, metric in metrics.items():
            if name not in core:
                metric.update(batch["src_text"], outputs, references)
        return loss, hyps

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
        val_beam_size: Optional[PositiveInt] = None,
        length_penalty: NonNegativeFloat = 0.0,
        max_output_len: Optional[PositiveInt] = None,
        plot_examples: NonNegativeInt = 4,
        attention_penalty: NonNegativeFloat = 1.0,
        finetune: Optional[dict] = None,
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
        finetune: ``{freeze: true, from_epoch: N, lr: ...}``: the pretrained image encoder (``image_grid``'s) frozen
            until epoch N (null: throughout), then trained at its own learning rate (see ``FinetuneConfig``).
        val_beam_size: the beam validation decodes with (default ``beam_size``: the scores checkpoints are chosen
            by are those of the decoding that will be used).
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
        inputs = ImageInputs(info.channels, info.image_size, embedding.grid, info.fit)
        task = cls(info, embedding, encoder, seq2seq, inputs, optim, plot_examples, val_beam_size or beam_size)
        task.finetune = validate(dict(finetune or {}), FinetuneConfig, "model.finetune")
        if (task.finetune.freeze or task.finetune.lr is not None) and not isinstance(embedding, ImageGrid):
            raise ConfigError(
                f"model.finetune: embed '{embedding.registered_name}' has no pretrained encoder to freeze or fine-tune; "
                "use {type: image_grid, encoder: {type: smp, name: ..., weights: ...}}"
            )
        task.start_epoch(0)
        return task
