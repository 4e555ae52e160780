"""The captioning task (Show, Attend and Tell): image → Embed (a grid of feature vectors) → Encode → memory →
Predict (a decoder that Attends over the grid) → caption tokens.

It shares the sequence-to-sequence core with translation (``eeap.seq2seq``): the same decoders, beam search, losses
(hard attention's REINFORCE term, the doubly stochastic regularisation) and metrics; what is its own is the image
source, the figures and what ``predict`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from eeap.attend.base import head_mean
from eeap.data import read_image
from eeap.embed.base import ImageEmbedder
from eeap.encode.base import SequenceEncoder
from eeap.errors import DataError
from eeap.plotting import caption_overlays, display_image, save_figure
from eeap.predict.base import SequenceDecoder
from eeap.predict.search import Hypotheses
from eeap.prediction import DecodeOptions, Problems
from eeap.registry import EMBED, ENCODE, TASK, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from eeap.seq2seq import Seq2Seq, hypothesis_records
from eeap.task import AttendSection, Example, Task, build_predict
from eeap.tasks.captioning.data import CaptioningInfo

DEFAULT_ATTEND = {"type": "additive"}


@TASK.register("captioning")
class CaptioningTask(Task):
    """Caption images with an attention decoder; BLEU-4 over the caption's tokens, chrF and exact match.

    # Parameters
    info: the caption tokenizer and image form, supplied by the framework.
    embed: the image embedding (a grid of feature vectors).
    encoder: the sequence encoder over the grid.
    seq2seq: the decoder with its attention, its loss, decoding and metrics (``eeap.seq2seq.Seq2Seq``).
    optim: optimizer section (see ``eeap.task.OptimConfig``).
    plot_examples: validation images whose attention is plotted each validation.
    """

    info_class = CaptioningInfo
    monitor = ("val/bleu", "max")

    def metric_names(self) -> list[str]:
        return self.seq2seq.metric_names()

    def __init__(
        self,
        info: CaptioningInfo,
        embed: ImageEmbedder,
        encoder: SequenceEncoder,
        seq2seq: Seq2Seq,
        optim: Optional[dict] = None,
        plot_examples: int = 4,
    ) -> None:
        super().__init__(optim)
        self.info, self.embed, self.encoder, self.seq2seq = info, embed, encoder, seq2seq
        self.plot_examples = plot_examples

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
        return cls(info, embedding, encoder, seq2seq, optim, plot_examples)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """images (batch, C, H, W) -> memory (batch, h·w, encoder_dim) and an all-true mask (batch, h·w)."""
        x = self.embed(images)  # (batch, h·w, embed_dim)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return self.encoder(x, mask), mask

    def encode_inputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """What ``eeap export`` exports as the encoder: ``encode``."""
        return self.encode(images)

    def example_inputs(self) -> dict[str, tuple[Tensor, dict[int, str]]]:
        """Images (batch, C, H, W) at the data's size for ``encode_inputs``, batch dynamic."""
        return {"images": (torch.rand(3, self.info.channels, *self.info.image_size), {0: "batch"})}

    def decode(self, images: Tensor, beam_size: Optional[int] = None, **options: Any) -> Hypotheses:
        """Caption a batch of images: the best hypotheses with their attention weights (``options``: n_best,
        length_penalty, coverage, as ``Seq2Seq.decode``)."""
        return self.seq2seq.decode(*self.encode(images), beam_size, **options)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss, logs = self.seq2seq.training_loss(*self.encode(batch["src"]), batch)
        for key, value in logs.items():
            self.log(key, value, prog_bar=key == "train/loss", batch_size=len(batch["src"]))
        return loss

    def evaluate(self, batch: dict, split: str, beam_size: int) -> Hypotheses:
        """Loss, decoding and metrics for a validation or test batch."""
        memory, mask = self.encode(batch["src"])
        loss, hyps, metrics = self.seq2seq.evaluate(memory, mask, batch, split, beam_size)
        self.log_metrics(split, {"loss": loss, **metrics}, len(batch["src"]), prog_bar="bleu")
        return hyps

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        return {"hyps": self.evaluate(batch, "val", beam_size=1)}

    def validation_examples(self, batch: dict, outputs: dict) -> list[Example]:
        hyps = outputs["hyps"]
        return [self.example(hyps, i, batch) for i in range(min(self.plot_examples, len(batch["src"])))]

    def example(self, hyps: Hypotheses, row: int, batch: dict) -> Example:
        """Validation example ``row`` as the loggers show it: image, caption, true caption, attention per token."""
        figure = self.figure(hyps, row, batch["src"][row], f"true: {batch['tgt_text'][row]}")
        output = self.info.target.decode(hyps.tokens[row].tolist())
        return Example(display_image(batch["src"][row].float().cpu()), output, batch["tgt_text"][row], figure)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test", beam_size=self.seq2seq.beam_size)

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams({"sacrebleu_signature": self.seq2seq.bleu_signature()})

    def figure(self, hyps: Hypotheses, row: int, image: Tensor, title: str) -> Any:
        """The attention of each generated token laid over the image (the mean over heads where there are several),
        or None without attention."""
        if hyps.weights is None:
            return None
        length = int(hyps.lengths[row])
        pieces = self.info.target.pieces(hyps.tokens[row, :length].tolist()) + ["</s>"]
        weights = head_mean(hyps.weights, 3)[row, : length + 1].float().cpu()  # (tokens, h·w)
        caption = self.info.target.join(pieces[:-1])
        return caption_overlays(image.float().cpu(), weights, self.embed.grid, pieces, title, caption)

    @torch.no_grad()
    def predict_lines(
        self, lines: list[str], options: DecodeOptions = DecodeOptions(), plot_dir: Optional[str] = None, first: int = 1
    ) -> tuple[list[Optional[dict]], Problems]:
        """Caption the image at each line's path (lines numbered from ``first``): one record per line
        (``hypothesis_records``), None for a missing, unreadable or wrongly sized image, which gets a message."""
        problems = Problems()
        outputs: list[Optional[dict]] = [None] * len(lines)
        todo = []
        for number, line in enumerate(lines, first):
            if not line.strip():
                problems.skip(f"line {number}: empty input")
                continue
            try:
                pixels = read_image(Path(line.strip()), self.info.channels, self.info.image_size, resize=False)
            except DataError as e:
                problems.skip(f"line {number}: {e}")
                continue
            todo.append((number - first, torch.as_tensor(pixels)))
        for start in range(0, len(todo), options.batch_size):
            chunk = todo[start : start + options.batch_size]
            images = torch.stack([image for _, image in chunk]).to(self.device)
            hyps = self.decode(images, options.beam_size, **options.search())
            records = hypothesis_records(hyps, self.info.target, options.n_best, options.attention)
            for row, (index, image) in enumerate(chunk):
                outputs[index] = records[row]
                figure = self.figure(hyps, row, image, lines[index].strip()) if plot_dir else None
                if figure is not None:
                    save_figure(figure, Path(plot_dir or ".") / f"line{index + first:05d}.png")
        return outputs, problems
