"""The COCO caption metrics against pycocoevalcap's own ``COCOEvalCap`` on a fixed set of outputs and references."""

from __future__ import annotations

import shutil

import pytest

from eeap.model import caption_metrics
from eeap.model.caption_metrics import CaptionScore, caption_scores, python_ptb_tokenize

REFERENCES = {
    1: [
        "A small red circle to the left of a large blue square.",
        "a red circle, left of a big blue square",
        "There is a small red circle beside a large blue square.",
        "The small red circle is left of the large blue square.",
        "a tiny red ball next to a big blue box",
    ],
    2: [
        "Two green triangles above a yellow square.",
        "two green triangles over a yellow square",
        "A yellow square below two green triangles.",
        "green triangles (two of them) sit above a yellow square",
        "Two triangles, both green, are above a yellow square!",
    ],
    3: [
        "A large purple star in the middle of the picture.",
        "a big purple star in the centre",
        "The picture's only shape: a large purple star.",
        "a purple star that's large",
        "It doesn't have anything but a big purple star.",
    ],
    4: ["a blue circle", "one blue circle", "a single blue circle on its own", "A circle -- blue.", "blue circle"],
}
OUTPUTS = {
    1: "a small red circle left of a large blue square",
    2: "two green triangles above a square",
    3: "a large purple star",
    4: "a red circle",
}
java = pytest.mark.skipif(shutil.which("java") is None, reason="the COCO evaluation's tokenizer needs Java")


def reference_scores() -> dict[str, float]:
    """COCOEvalCap's own scores of the fixture (SPICE left out: its CoreNLP jars would be downloaded)."""
    from pycocoevalcap import eval as coco_eval
    from pycocotools.coco import COCO

    class NoSpice:
        def __init__(self) -> None: ...

        def method(self) -> str:
            return "SPICE"

        def compute_score(self, gts: dict, res: dict) -> tuple[float, list]:
            return 0.0, [0.0] * len(gts)

    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in REFERENCES],
        "annotations": [
            {"image_id": i, "id": 10 * i + n, "caption": c}
            for i, refs in REFERENCES.items()
            for n, c in enumerate(refs)
        ],
    }
    coco.createIndex()
    results = coco.loadRes([{"image_id": i, "caption": c} for i, c in OUTPUTS.items()])
    evaluation = coco_eval.COCOEvalCap(coco, results)
    saved = coco_eval.Spice
    coco_eval.Spice = NoSpice  # type: ignore[misc,assignment]
    try:
        evaluation.evaluate()
    finally:
        coco_eval.Spice = saved  # type: ignore[misc]
    return evaluation.eval


@java
def test_every_score_equals_coco_eval_cap() -> None:
    expected = reference_scores()
    metrics = caption_scores(["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"])
    for metric in metrics.values():  # two batches, and an image seen twice (a sampler's padding) counts once
        metric.update(["1", "2"], [OUTPUTS[1], OUTPUTS[2]], [REFERENCES[1], REFERENCES[2]])
        metric.update(
            ["3", "4", "1"], [OUTPUTS[3], OUTPUTS[4], OUTPUTS[1]], [REFERENCES[3], REFERENCES[4], REFERENCES[1]]
        )
    got = {name: float(metric.compute()) for name, metric in metrics.items()}
    for name, coco_name in caption_metrics.SCORES.items():
        if name in got:
            assert got[name] == pytest.approx(expected[coco_name], abs=1e-6), name
    assert 0 < got["bleu_4"] < got["bleu_1"] < 1 and got["cider"] > 0.5 and 0 < got["meteor"] < 1


@java
def test_python_tokenizer_splits_as_the_ptb_tokenizer() -> None:
    """Without Java the fallback tokenizer gives the Java PTB tokenizer's tokens on ordinary captions."""
    captions = {i: refs + [OUTPUTS[i]] for i, refs in REFERENCES.items()}
    java_tokens = caption_metrics.tokenize(captions)
    assert {i: [python_ptb_tokenize(c) for c in texts] for i, texts in captions.items()} == java_tokens
    assert java_tokens[3][4] == "it does n't have anything but a big purple star"


def test_without_java_slow_scores_are_left_out_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match=r"meteor: needs Java .*default-jre-headless"):
        metrics = caption_scores(["bleu_1", "meteor", "cider", "spice"])
    assert list(metrics) == ["bleu_1", "cider"]
    metric = metrics["bleu_1"]
    metric.update(["1"], ["a blue circle"], [["A blue circle.", "one blue circle"]])
    assert float(metric.compute()) == pytest.approx(1.0, abs=1e-6)  # the outputs' words all in a reference


def test_spice_without_its_jars_is_left_out_naming_the_folder() -> None:
    if caption_metrics.spice_ready():
        pytest.skip("SPICE's CoreNLP jars are installed here")
    with pytest.warns(UserWarning, match="spice: needs Java and stanford-corenlp-3.6.0.jar"):
        assert "spice" not in caption_scores(["cider", "spice"])


def test_an_empty_split_scores_zero_and_reset_clears() -> None:
    metric = CaptionScore("cider", ["cider"])
    assert float(metric.compute()) == 0.0
    metric.update(["a"], ["x"], [["y"]])
    metric.reset()
    assert metric.examples == []
