"""The captioning task (Show, Attend and Tell): image → feature grid → attention decoder → caption tokens.

It is the translation task with an image as the source: the same decoders, beam search, losses (with hard
attention's REINFORCE term and the doubly stochastic regularisation) and metrics; only the embedding, the figures and
``predict.py``'s input differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torchmetrics
from torch import Tensor, nn

from eeap.errors import DataError
from eeap.inference import Problems
from eeap.loggers import log_figure
from eeap.plotting import caption_overlays, save_figure
from eeap.predict.search import Hypotheses
from eeap.registry import EMBED, TASK, NonNegativeFloat
from tasks.captioning.data import CaptioningInfo
from tasks.classification.data import read_image
from tasks.translation.module import TranslationTask


@TASK.register("captioning")
class CaptioningTask(TranslationTask):
    """Caption images with an attention decoder; BLEU-4 (torchmetrics, over the caption's tokens) and exact match.

    # Parameters
    info: the caption tokenizer and image form, supplied by the framework.
    embed: the image's feature grid: ``{type: cnn}`` (a small CNN) or ``{type: image_grid, encoder: {type: smp,
        name: resnet18}}`` (any smp / timm encoder).
    encode: ``{type: identity}`` to attend over the grid itself, or ``rnn`` / ``transformer`` over it.
    attend: the decoder's attention (soft: ``additive`` and the rest; ``hard``); ``none`` is the no-attention
        baseline (the decoder sees the mean feature).
    predict: ``{type: rnn_decoder, cell: lstm, context_gate: true}`` is Show, Attend and Tell's decoder;
        ``transformer_decoder`` the alternative.
    attention_penalty: λ of the doubly stochastic regularisation (default 1, as in the paper).
    Other keys as for translation (optim, label_smoothing, beam_size, length_penalty, max_output_len,
    plot_examples).
    """

    monitor = ("val/bleu", "max")

    def __init__(self, info: CaptioningInfo, attention_penalty: NonNegativeFloat = 1.0, **kwargs) -> None:
        super().__init__(info, attention_penalty=attention_penalty, **kwargs)
        for split in ("val", "test"):  # BLEU-4 over whitespace-separated caption tokens
            setattr(self, f"{split}_bleu", torchmetrics.text.BLEUScore(n_gram=4))

    def build_embed(self, embed: dict, info: CaptioningInfo) -> nn.Module:
        return EMBED.build(embed, "model.embed", in_channels=info.channels, image_size=list(info.image_size))

    def encode(self, images: Tensor, mask: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """images (batch, C, H, W) -> memory (batch, h·w, encoder_dim) and an all-true mask (batch, h·w)."""
        x = self.embed(images)  # (batch, h·w, embed_dim)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return self.encoder(x, mask), mask

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams({"bleu": "torchmetrics BLEUScore(n_gram=4), whitespace-separated caption tokens"})

    def caption_pieces(self, hyps: Hypotheses, row: int) -> tuple[list[str], Tensor]:
        """The output tokens of row (with </s>) and their weights (tokens, h·w)."""
        length = int(hyps.lengths[row])
        pieces = self.info.target.pieces(hyps.tokens[row, :length].tolist()) + ["</s>"]
        return pieces, hyps.weights[row, : length + 1].float().cpu()

    def plot(self, batch: dict, hyps: Hypotheses, key: str) -> None:
        """For the first ``plot_examples`` images: the attention of each generated token laid over the image."""
        if hyps.weights is None:
            return
        for i in range(min(self.plot_examples, len(batch["src"]))):
            pieces, weights = self.caption_pieces(hyps, i)
            figure = caption_overlays(batch["src"][i].cpu(), weights, self.embed.grid, pieces,
                                      f"true: {batch['tgt_text'][i]}")
            log_figure(self, f"{key}_{i}", figure)

    @torch.no_grad()
    def predict_lines(self, lines: list[str], beam_size: Optional[int] = None, batch_size: int = 64,
                      plot_dir: Optional[str] = None) -> tuple[list[str], Problems]:
        """Caption the image at each line's path; a missing, unreadable or wrongly sized image gives an empty output
        and a message."""
        problems = Problems()
        outputs = [""] * len(lines)
        todo = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                problems.skip(f"line {number}: empty input")
                continue
            try:
                image = read_image(Path(line.strip()), self.info.channels, self.info.image_size, resize=False)
            except DataError as e:
                problems.skip(f"line {number}: {e}")
                continue
            todo.append((number - 1, torch.as_tensor(image)))
        beam_size = beam_size or self.beam_size
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            images = torch.stack([image for _, image in chunk]).to(self.device)
            hyps = self.translate(images, None, beam_size)
            for row, (index, image) in enumerate(chunk):
                outputs[index] = self.info.target.decode(hyps.tokens[row].tolist())
                if plot_dir and hyps.weights is not None:
                    pieces, weights = self.caption_pieces(hyps, row)
                    figure = caption_overlays(image, weights, self.embed.grid, pieces, lines[index].strip())
                    save_figure(figure, Path(plot_dir) / f"line{index + 1:05d}.png")
        return outputs, problems
