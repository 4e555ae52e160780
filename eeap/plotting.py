"""Attention figures shared by every task."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def attention_heatmap(weights: Any, source: Sequence[str], target: Sequence[str], title: str = "") -> plt.Figure:
    """A (target × source) heatmap of attention weights; weights (tgt_len, src_len), trimmed to the labels.

    The margins are worked out from the labels' lengths instead of measured by a layout pass: a validation plots
    several of these, and matplotlib's tight layout would take half of each one's time."""
    weights = np.asarray(weights, dtype=np.float32)[: len(target), : len(source)]
    x_labels, y_labels = [repr(s)[1:-1] for s in source], [repr(t)[1:-1] for t in target]
    char = 0.62 * 7 / 72  # inches per character of a 7-point label, a generous mean width
    left = 0.35 + char * max(map(len, y_labels), default=1)  # the axis label, then the tick labels
    bottom = 0.35 + char * max(map(len, x_labels), default=1)  # x tick labels stand upright
    top, right = (0.3 if title else 0.1), 0.65  # the title; the colour bar and its labels
    width = max(left + 0.3 * len(source) + right, 3.0, 0.62 * 8 / 72 * len(title) + 0.3)
    height = max(bottom + 0.3 * len(target) + top, 2.5)
    figure = Figure(figsize=(width, height))
    box = (height - bottom - top) / height
    axis = figure.add_axes((left / width, bottom / height, (width - left - right) / width, box))
    bar = figure.add_axes(((width - right + 0.1) / width, bottom / height, 0.12 / width, box))
    image = axis.imshow(
        weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max(initial=0.0)), 1e-6), aspect="auto"
    )
    axis.set_xticks(range(len(source)), x_labels, rotation=90, fontsize=7)
    axis.set_yticks(range(len(target)), y_labels, fontsize=7)
    axis.set_xlabel("source", labelpad=2)
    axis.set_ylabel("output", labelpad=2)
    if title:
        axis.set_title(title, fontsize=8)
    figure.colorbar(image, cax=bar)
    bar.tick_params(labelsize=7)
    return figure


def attention_overlay(image: Any, weights: Any, grid: Sequence[int], title: str = "") -> plt.Figure:
    """An image with attention over its grid of patches laid on top; image (C, H, W) or (H, W), weights (rows·cols,)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    heat = np.asarray(weights, dtype=np.float32).reshape(grid)
    figure, axis = plt.subplots(figsize=(3, 3))
    axis.imshow(image, cmap="gray" if image.ndim == 2 else None)
    axis.imshow(
        heat,
        cmap="jet",
        alpha=0.45,
        extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5),
        interpolation="nearest",
    )
    axis.axis("off")
    if title:
        axis.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def save_figure(figure: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG (making its folder) and close it. Figures are laid out where they are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def gate_figure(image: Any, gates: Sequence[Any], masks: Sequence[tuple[str, Any]], num_classes: int) -> plt.Figure:
    """An image, each attention gate's coefficient map laid over it, then label masks side by side.

    image (C, H, W); gates [(h, w)] at any resolution (stretched over the image); masks [(title, (H, W) indices)].
    """
    image = np.asarray(image, dtype=np.float32)
    image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    panels = 1 + len(gates) + len(masks)
    figure, axes = plt.subplots(1, panels, figsize=(2.2 * panels, 2.4), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
    axes[0].set_title("image", fontsize=8)
    extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
    for i, gate in enumerate(gates):
        axis = axes[1 + i]
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None)
        axis.imshow(
            np.asarray(gate, dtype=np.float32),
            cmap="jet",
            alpha=0.5,
            vmin=0.0,
            vmax=1.0,
            extent=extent,
            interpolation="bilinear",
        )
        axis.set_title(f"gate {i + 1} ({np.asarray(gate).shape[0]}×{np.asarray(gate).shape[1]})", fontsize=8)
    for j, (title, mask) in enumerate(masks):
        axis = axes[1 + len(gates) + j]
        axis.imshow(np.asarray(mask), cmap="tab10", vmin=0, vmax=max(num_classes - 1, 1), interpolation="nearest")
        axis.set_title(title, fontsize=8)
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    return figure


def caption_overlays(
    image: Any, weights: Any, grid: Sequence[int], tokens: Sequence[str], title: str = "", columns: int = 4
) -> plt.Figure:
    """One panel per generated token: the image with that token's attention over its grid laid on top.

    image (C, H, W); weights (tokens, rows·cols); tokens: the generated pieces (``</s>`` included).
    """
    image = np.asarray(image, dtype=np.float32)
    image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    weights = np.asarray(weights, dtype=np.float32)
    count = min(len(tokens), len(weights))
    rows = max(1, -(-count // columns))
    aspect = image.shape[1] / image.shape[0]
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2 * min(aspect, 4), rows * 1.3), squeeze=False)
    extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
    for k, axis in enumerate(axes.flat):
        axis.axis("off")
        if k >= count:
            continue
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None)
        axis.imshow(weights[k].reshape(grid), cmap="jet", alpha=0.5, extent=extent, interpolation="bilinear")
        axis.set_title(str(tokens[k]).replace("$", r"\$"), fontsize=8)  # a literal $ would start mathtext
    if title:
        figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    return figure
