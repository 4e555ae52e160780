"""The figures every task logs: what a reader must be able to see in them."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from eeap.model.plotting import attention_overlay, caption_overlays, gate_figure


def pixels(figure):
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float32)


def test_an_overlay_leaves_the_image_visible_under_the_attention_and_has_a_colour_bar():
    digit = np.zeros((8, 8), np.float32)
    digit[1:7, 3:5] = 1.0  # a bright bar
    weights = np.full(16, 1 / 16)  # attention everywhere: the map covers the whole image
    weights[0] = 0.5
    with_digit = attention_overlay(digit[None], weights, (4, 4), "predicted 1")
    blank = attention_overlay(np.zeros((1, 8, 8), np.float32), weights, (4, 4), "predicted 1")
    assert len(with_digit.axes) == 2 and with_digit.axes[1].get_ylabel() == "attention"  # the colour bar
    axis = with_digit.axes[0]
    a, b = pixels(with_digit), pixels(blank)
    x0, y0, x1, y1 = (int(v) for v in axis.get_window_extent().extents)
    height = a.shape[0]
    region = (slice(height - y1, height - y0), slice(x0, x1))
    changed = np.abs(a[region] - b[region]).max(axis=2) > 60  # the bar shows through the map
    assert 0.1 < changed.mean() < 0.4  # the bar's share of the image: 12 of 64 cells ~ 0.19


def test_a_caption_figure_has_a_panel_per_token_the_predicted_text_and_no_empty_panels():
    image = np.random.default_rng(0).random((1, 16, 48))
    weights = np.random.default_rng(1).random((3, 12))
    figure = caption_overlays(image, weights, (2, 6), ["x", "y", "</s>"], "true: xy", caption="xy")
    panels = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in panels] == ["x", "y", "</s>"]
    assert len(figure.axes) == 4  # three panels and one colour bar, nothing blank
    texts = [t.get_text() for t in figure.texts]
    assert texts == ["predicted: xy", "true: xy"]
    width, height = figure.get_size_inches()
    assert width / height > 2  # three wide panels in one row, sized to the caption


def test_gate_maps_share_one_colour_bar_from_zero_to_one():
    gates = [np.full((4, 4), 0.25), np.full((8, 8), 0.75)]
    figure = gate_figure(np.zeros((1, 16, 16)), gates, [("predicted", np.zeros((16, 16), int))], 2)
    bar = figure.axes[-1]
    assert bar.get_ylabel() == "gate" and bar.get_ylim() == (0.0, 1.0)


def test_the_learning_curve_shows_losses_metrics_and_the_best_validation():
    from eeap.model.plotting import learning_curve

    train = [(0, 3.0), (5, 2.0), (10, 1.0)]
    val = [(4, {"val/loss": 2.5, "val/exact_match": 0.2}), (9, {"val/loss": 1.5, "val/exact_match": 0.6})]
    figure = learning_curve(train, val, "val/exact_match", "max")
    loss, metrics = figure.axes
    assert [line.get_label() for line in loss.get_lines()] == ["train/loss", "val/loss"]
    assert list(loss.get_lines()[1].get_xdata()) == [4, 9]
    best = metrics.get_lines()[-1]  # the star on the best validation
    assert (list(best.get_xdata()), list(best.get_ydata())) == ([9], [0.6])
    assert metrics.texts[0].get_text() == "best val/exact_match 0.6"
