"""Attention figures shared by every task."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def attention_heatmap(weights: Any, source: Sequence[str], target: Sequence[str], title: str = "") -> plt.Figure:
    """A (target × source) heatmap of attention weights; weights (tgt_len, src_len), trimmed to the labels."""
    weights = np.asarray(weights, dtype=np.float32)[: len(target), : len(source)]
    figure, axis = plt.subplots(figsize=(max(3.0, 0.3 * len(source) + 1.5), max(2.5, 0.3 * len(target) + 1.2)))
    image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max(initial=0.0)), 1e-6),
                        aspect="auto")
    axis.set_xticks(range(len(source)), [repr(s)[1:-1] for s in source], rotation=90, fontsize=7)
    axis.set_yticks(range(len(target)), [repr(t)[1:-1] for t in target], fontsize=7)
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    if title:
        axis.set_title(title, fontsize=8)
    figure.colorbar(image, ax=axis, fraction=0.04)
    figure.tight_layout()
    return figure
