"""Attention figures shared by every task.

Figures are matplotlib ``Figure`` objects made without pyplot: drawing one chooses no backend and registers nothing
with pyplot, so a notebook's own plots keep their backend after ``eeap.load()``, and a figure is freed when it is no
longer referenced. matplotlib is imported when the first figure is drawn, not with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib figure outside pyplot (``kwargs``: ``figsize`` and the rest of ``Figure``'s)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def attention_heatmap(weights: Any, source: Sequence[str], target: Sequence[str], title: str = "") -> Figure:
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
    figure = new_figure(figsize=(width, height))
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


def display_image(image: Any) -> np.ndarray:
    """An image tensor or array (C, H, W) or (H, W), normalised or not, as an array to show: (H, W) or (H, W, 3)
    of floats in [0, 1] (each image stretched to its own range)."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


HEAT = "inferno"  # dark where attention is low, bright where high: reads on grey images and in grey print


def overlay(axis: Any, image: np.ndarray, heat: np.ndarray, vmax: Optional[float] = None) -> Any:
    """Draw a grey image with a heat map over it, stretched to the image; the map's opacity grows with its value
    (transparent at 0, 0.65 at the top), so the image stays visible under it. Returns the mappable for a colour bar.

    image (H, W) or (H, W, 3) in [0, 1]; heat (rows, cols) at any resolution."""
    heat = np.asarray(heat, dtype=np.float32)
    top = vmax if vmax is not None else max(float(heat.max(initial=0.0)), 1e-6)
    import matplotlib

    norm = matplotlib.colors.Normalize(vmin=0.0, vmax=top)
    cmap = matplotlib.colormaps[HEAT]
    rgba = cmap(norm(heat))  # (rows, cols, 4)
    rgba[..., 3] = 0.65 * np.clip(heat / top, 0.0, 1.0)
    grey = image if image.ndim == 2 else image.mean(axis=2)
    axis.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0)
    extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
    axis.imshow(rgba, extent=extent, interpolation="bilinear")
    axis.axis("off")
    return matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)


def attention_overlay(image: Any, weights: Any, grid: Sequence[int], title: str = "") -> Figure:
    """An image with attention over its grid of patches laid on top, translucent, and a colour bar of the weights;
    image (C, H, W) or (H, W), weights (rows·cols,)."""
    picture = display_image(image)
    figure = new_figure(figsize=(3.4, 3.0))
    axis = figure.add_axes((0.03, 0.03, 0.72, 0.84 if title else 0.94))
    bar = figure.add_axes((0.8, 0.08, 0.05, 0.76 if title else 0.84))
    mappable = overlay(axis, picture, np.asarray(weights, dtype=np.float32).reshape(grid))
    figure.colorbar(mappable, cax=bar, label="attention")
    bar.tick_params(labelsize=7)
    if title:
        axis.set_title(title, fontsize=8)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write a figure as PNG (making its folder). Figures are laid out where they are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path


def gate_figure(image: Any, gates: Sequence[Any], masks: Sequence[tuple[str, Any]], num_classes: int) -> Figure:
    """An image, each attention gate's coefficient map laid over it, then label masks side by side.

    image (C, H, W); gates [(h, w)] at any resolution (stretched over the image); masks [(title, (H, W) indices)].
    """
    shown = display_image(image)
    panels = 1 + len(gates) + len(masks)
    figure = new_figure(figsize=(2.2 * panels + 0.6, 2.4))
    axes = figure.subplots(1, panels, squeeze=False)[0]
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None)
    axes[0].set_title("image", fontsize=8)
    mappable = None
    for i, gate in enumerate(gates):
        axis = axes[1 + i]
        mappable = overlay(axis, shown, np.asarray(gate, dtype=np.float32), vmax=1.0)
        axis.set_title(f"gate {i + 1} ({np.asarray(gate).shape[0]}×{np.asarray(gate).shape[1]})", fontsize=8)
    for j, (title, mask) in enumerate(masks):
        axis = axes[1 + len(gates) + j]
        axis.imshow(np.asarray(mask), cmap="tab10", vmin=0, vmax=max(num_classes - 1, 1), interpolation="nearest")
        axis.set_title(title, fontsize=8)
    for axis in axes:
        axis.axis("off")
    figure.tight_layout()
    if mappable is not None:  # one scale for every gate: coefficients in [0, 1]
        figure.subplots_adjust(right=1 - 0.6 / (2.2 * panels + 0.6))
        bar = figure.add_axes((1 - 0.45 / (2.2 * panels + 0.6), 0.15, 0.12 / (2.2 * panels + 0.6), 0.7))
        figure.colorbar(mappable, cax=bar, label="gate")
        bar.tick_params(labelsize=7)
    return figure


PLANES = (("axial", 2), ("coronal", 1), ("sagittal", 0))  # the plane's name and the voxel axis it fixes


def volume_centre(masks: Sequence[tuple[str, Any]], shape: Sequence[int]) -> tuple[int, int, int]:
    """Where to cut a volume: the centre of the last mask's labelled voxels (the truth where given), else of the
    first's that has any, else the volume's centre."""
    for _, mask in reversed(masks):
        hits = np.argwhere(np.asarray(mask) > 0)
        if len(hits):
            return tuple(int(v) for v in hits.mean(0).round())  # type: ignore[return-value]
    return tuple(n // 2 for n in shape)  # type: ignore[return-value]


def volume_slice(volume: np.ndarray, axis: int, at: int) -> np.ndarray:
    """The slice of ``volume`` (..., X, Y, Z) through voxel ``at`` of spatial ``axis``, transposed so the plane's
    second axis runs up the figure (with ``origin="lower"``): axial (Y, X), coronal (Z, X), sagittal (Z, Y)."""
    plane = np.take(volume, at, axis=volume.ndim - 3 + axis)
    return np.swapaxes(plane, -1, -2)


def volume_figure(
    image: Any,
    gates: Sequence[Any],
    masks: Sequence[tuple[str, Any]],
    num_classes: int,
    centre: Optional[Sequence[int]] = None,
) -> Figure:
    """A volume's attention: a row per plane (axial, coronal, sagittal) through ``centre`` (a voxel (x, y, z); by
    default the target's centre), each showing the image, every gate's coefficients over it (finest first) and the
    label volumes (prediction, truth).

    image (C, X, Y, Z); gates [(x, y, z)] at any resolution (resampled to the image's grid); masks [(title,
    (X, Y, Z) class indices)]."""
    import torch
    import torch.nn.functional as F

    image = np.asarray(image, dtype=np.float32)
    shape = image.shape[1:]
    grids = [
        F.interpolate(torch.as_tensor(np.asarray(g, dtype=np.float32))[None, None], size=shape, mode="trilinear")[
            0, 0
        ].numpy()
        for g in gates
    ]
    at = (
        volume_centre(masks, shape)
        if centre is None
        else tuple(min(max(int(v), 0), n - 1) for v, n in zip(centre, shape))
    )
    panels = 1 + len(grids) + len(masks)
    figure = new_figure(figsize=(2.2 * panels + 0.6, 2.3 * len(PLANES)))
    axes = figure.subplots(len(PLANES), panels, squeeze=False)
    mappable = None
    for row, (plane, axis) in enumerate(PLANES):
        shown = display_image(volume_slice(image, axis, at[axis]))
        axes[row, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None, origin="lower")
        axes[row, 0].set_title(f"{plane} ({'xyz'[axis]}={at[axis]})", fontsize=8)
        for i, grid in enumerate(grids):
            target = axes[row, 1 + i]
            mappable = overlay(target, shown, volume_slice(grid, axis, at[axis]), vmax=1.0)
            target.set_ylim(target.get_ylim()[::-1])  # the overlay draws top-down: turn it like the image
            target.set_title(f"gate {i + 1} ({'×'.join(str(n) for n in np.asarray(gates[i]).shape)})", fontsize=8)
        for j, (title, mask) in enumerate(masks):
            target = axes[row, 1 + len(grids) + j]
            target.imshow(
                volume_slice(np.asarray(mask), axis, at[axis]),
                cmap="tab10",
                vmin=0,
                vmax=max(num_classes - 1, 1),
                interpolation="nearest",
                origin="lower",
            )
            target.set_title(title, fontsize=8)
    for target in axes.flat:
        target.axis("off")
    figure.tight_layout()
    if mappable is not None:
        width = 2.2 * panels + 0.6
        figure.subplots_adjust(right=1 - 0.6 / width)
        bar = figure.add_axes((1 - 0.45 / width, 0.15, 0.12 / width, 0.7))
        figure.colorbar(mappable, cax=bar, label="gate")
        bar.tick_params(labelsize=7)
    return figure


def caption_overlays(
    image: Any,
    weights: Any,
    grid: Sequence[int],
    tokens: Sequence[str],
    title: str = "",
    caption: Optional[str] = None,
    columns: int = 4,
) -> Figure:
    """One panel per generated token: the image with that token's attention over its grid, translucent; the
    predicted caption (and ``title``, e.g. the true one) above, a colour bar beside. The figure is sized to the
    caption: as many panels as tokens (up to ``columns`` a row), each shaped as the image.

    image (C, H, W); weights (tokens, rows·cols); tokens: the generated pieces (``</s>`` included); caption: the
    predicted caption as text (default: the tokens, spaced).
    """
    picture = display_image(image)
    weights = np.asarray(weights, dtype=np.float32)
    count = max(1, min(len(tokens), len(weights)))
    columns = min(columns, count)
    rows = -(-count // columns)
    aspect = picture.shape[1] / picture.shape[0]
    panel_w = min(1.2 * aspect, 3.0) if aspect >= 1 else 1.4
    panel_h = panel_w / aspect + 0.25  # the token above each panel
    top, bar_w = 0.55, 0.7  # the caption lines; the colour bar and its labels
    width, height = columns * panel_w + bar_w, rows * panel_h + top
    figure = new_figure(figsize=(width, height))
    vmax = max(float(weights[:count].max(initial=0.0)), 1e-6)  # one scale for every panel
    mappable = None
    for k in range(count):
        row, col = divmod(k, columns)
        axis = figure.add_axes(
            (
                col * panel_w / width,
                1 - (top + (row + 1) * panel_h) / height,
                (panel_w - 0.08) / width,
                (panel_h - 0.25) / height,
            )
        )
        if k < len(weights):
            mappable = overlay(axis, picture, weights[k].reshape(grid), vmax=vmax)
        axis.set_title(str(tokens[k]).replace("$", r"\$"), fontsize=8, pad=2)  # a literal $ would start mathtext
    caption = "predicted: " + (caption if caption is not None else " ".join(t for t in tokens if t != "</s>"))
    figure.text(0.01, 1 - 0.2 / height, caption.replace("$", r"\$"), fontsize=8, va="center")
    if title:
        figure.text(0.01, 1 - 0.42 / height, title.replace("$", r"\$"), fontsize=8, va="center", color="0.3")
    if mappable is not None:
        bar = figure.add_axes(
            ((width - bar_w + 0.1) / width, 0.1 / height, 0.12 / width, (height - top - 0.2) / height)
        )
        figure.colorbar(mappable, cax=bar)
        bar.tick_params(labelsize=7)
    return figure


def learning_curve(
    train: Sequence[tuple[int, float]], val: Sequence[tuple[int, dict]], monitor: str = "", mode: str = "min"
) -> Figure:
    """Losses (training and validation) on the left, the other validation metrics on the right, against the step;
    the best value of ``monitor`` marked with a dot and its value.

    train: [(step, train/loss)]; val: [(step, {val/<name>: value})]."""
    names = sorted({name for _, metrics in val for name in metrics if name != "val/loss"})
    figure = new_figure(figsize=(9.0 if names else 5.0, 3.4))
    panels = figure.subplots(1, 2 if names else 1, squeeze=False)[0]
    loss = panels[0]
    if train:
        loss.plot(*zip(*train), label="train/loss", lw=1, alpha=0.8)
    val_loss = [(step, m["val/loss"]) for step, m in val if "val/loss" in m]
    if val_loss:
        loss.plot(*zip(*val_loss), "o-", label="val/loss", ms=3)
    loss.set_xlabel("step")
    loss.set_ylabel("loss")
    loss.legend(fontsize=7)
    for name in names:
        points = [(step, m[name]) for step, m in val if name in m]
        panels[1].plot(*zip(*points), "o-", label=name, ms=3)
    if names:
        panels[1].set_xlabel("step")
        panels[1].set_ylabel("validation")
        panels[1].legend(fontsize=7)
    best_points = [(step, m[monitor]) for step, m in val if monitor in m]
    if best_points:
        pick = max if mode == "max" else min
        step, value = pick(best_points, key=lambda p: p[1])
        axis = loss if monitor == "val/loss" or not names else panels[1]
        axis.plot([step], [value], "k*", ms=10, zorder=5)
        axis.annotate(
            f"best {monitor} {value:.4g}", (step, value), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    for axis in panels:
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    return figure
