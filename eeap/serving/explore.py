"""``eeap explore``: a local web page (Gradio; the ``explore`` extra) where a trained model answers what a person
types or uploads and shows where each output piece looked.

A captioning model's page: an image upload (or one of the model's own data's images), the caption and its score, the
n best, and each word's attention laid over the image as the model read it (``CaptionExplorer``).

A translation model's page: a text box, the output as it decodes and its score, beam search's n best with their
scores, and the alignment of the chosen hypothesis as a table of source pieces × output pieces shaded by weight
(hovering a cell shows it): the mean over heads or one head where the attention has several, each layer's for a
Transformer, and what hard, local and gated attention decided (the chosen position, the window, the shut gates). Each answer is ``eeap predict --format jsonl --attention``'s record
for the same input (``Task.predict_lines``), shown in full under the table. Two models side by side (``eeap explore
A B``: additive against dot attention, say) answer the same input each in its column.

Safe by default: it listens on 127.0.0.1 unless ``--host`` says otherwise, never opens a public share link, sends
no analytics, answers requests one at a time through Gradio's queue, and refuses over-long input with a message in
the page; the model is loaded once.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from eeap.errors import ConfigError, DataError
from eeap.model.prediction import DecodeOptions

MAX_CHARS = 500  # the longest input the page takes (--max-chars)
MAX_BEAM = 10
STREAM_EVERY = 0.1  # seconds between the partial outputs a page shows while a sequence decodes
BLANK: tuple = ("", None, [], "", "", {})  # a sequence model's answer before it comes


def streamed(
    work: Callable[[Callable[[list[str]], None]], tuple], partial: Callable[[list[str]], tuple], every: float
) -> Iterator[tuple]:
    """Run ``work(progress)`` on a thread of its own and yield ``partial(outputs so far)`` as decoding reports it, no
    more often than every ``every`` seconds (a quick answer shows none), then work's answer; an exception in the work
    is raised here."""
    import queue
    import threading
    import time

    reports: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["answer"] = work(reports.put)
        except BaseException as e:  # noqa: BLE001  (handed to the page's thread)
            result["error"] = e
        finally:
            reports.put(None)

    thread = threading.Thread(target=run, daemon=True, name="eeap-explore-decode")
    thread.start()
    last = time.monotonic()
    while (outputs := reports.get()) is not None:
        if time.monotonic() - last >= every:
            last = time.monotonic()
            yield partial(outputs)
    thread.join()
    if "error" in result:
        raise result["error"]
    yield result["answer"]


def find_model(target: str) -> Path:
    """What ``eeap explore TARGET`` loads: a checkpoint, a model folder, or a run folder's best checkpoint (its
    ``last.ckpt`` when it kept no best)."""
    path = Path(target)
    if path.is_dir() and (path / "checkpoints").is_dir():
        best = sorted((path / "checkpoints").glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
        last = path / "checkpoints" / "last.ckpt"
        if best or last.is_file():
            return best[-1] if best else last
        raise DataError(f"{target}: a run folder without checkpoints; train it first, or give a .ckpt")
    if not path.exists():
        raise DataError(f"{target}: not found; give a checkpoint (.ckpt), a model folder or a run folder")
    return path


class Explorer:
    """A loaded model and what its page does with an input. Pages exist for sequence-to-sequence models on text
    (translation); other tasks are refused in one line when the page is built.

    # Parameters
    task: the trained task (``eeap.load``); source: where it came from (shown on the page);
    max_chars: the longest input taken.
    """

    def __init__(self, task: Any, source: str, max_chars: int = MAX_CHARS) -> None:
        from eeap.model.seq2seq import TokenInputs

        if not isinstance(getattr(task, "inputs", None), TokenInputs):
            raise ConfigError(
                f"eeap explore: a page for {task.registered_name} models is not there yet; translation, captioning, "
                "classification and segmentation models have one"
            )
        self.task, self.source, self.max_chars = task, source, max_chars
        self.beam = int(getattr(getattr(task, "seq2seq", None), "beam_size", 1) or 1)
        self.every = STREAM_EVERY

    def answer(
        self,
        text: str,
        beam: int = 1,
        head: str = "mean",
        hypothesis: int = 1,
        progress: Optional[Callable[[list[str]], None]] = None,
    ) -> tuple[str, Optional[float], list, str, str, dict]:
        """One input's answer: output, score, n best ([rank, output, score] rows), the alignment table (HTML) of
        the ``hypothesis``-th best, a message (empty when all went well) and predict's record. ``progress``: called
        with the output so far after each decoding step."""
        text = (text or "").strip()
        if not text:
            return "", None, [], "", "Type something first.", {}
        if len(text) > self.max_chars:
            too_long = f"The input is {len(text)} characters long; this page takes at most {self.max_chars}."
            return "", None, [], "", too_long, {}
        beam = max(1, min(int(beam), MAX_BEAM))
        options = DecodeOptions(beam_size=beam, n_best=min(beam, 5), attention=True, progress=progress)
        records, problems = self.task.predict_lines([text], options)
        record = records[0]
        message = "; ".join(m.removeprefix("line 1: ") for m in problems.messages)
        if record is None:
            return "", None, [], "", message or "The model could not read this input.", {}
        ranked = record.get("n_best", [{"output": record["output"], "score": record["score"]}])
        rows = [[rank, hyp["output"], hyp["score"]] for rank, hyp in enumerate(ranked, 1)]
        table = alignment_table(record, head, hypothesis)
        return record["output"], record["score"], rows, table, message, record

    def stream(self, text: str, beam: int = 1, head: str = "mean", hypothesis: int = 1) -> Iterator[tuple]:
        """``answer``'s parts as the output decodes: the output so far (the rest empty) while it decodes, then the
        answer."""

        def partial(outputs: list[str]) -> tuple:
            return (outputs[0], None, [], "", "", {})

        return streamed(lambda progress: self.answer(text, beam, head, hypothesis, progress), partial, self.every)

    def views(self) -> list[str]:
        """The attention maps the page offers: the mean over heads and each head (of the last attending layer), and
        for a decoder with several attending layers each layer's mean and heads."""
        probe = self.task.predict_lines(["1"], DecodeOptions(attention=True))[0][0] or {}
        heads = len(probe.get("attention_heads", []))
        each = ["mean"] + [f"head {h}" for h in range(1, heads + 1)]
        layers = len(probe.get("attention_layers", []))
        return each + [f"layer {layer} {view}" for layer in range(1, layers + 1) for view in each]


MAX_PIXELS = 40_000_000  # the largest upload (width × height) a caption page decodes
IMAGE_HEIGHT = 280  # pixels: the height a page shows an image at (small ones scaled up, pixels kept sharp)


class CaptionExplorer:
    """A captioning model and what its page does with an uploaded image: the caption, its score, beam search's n
    best, and each word's attention over the image (the image as the model read it, the word's weights over its grid
    laid over it). The answer is ``eeap predict --format jsonl --attention``'s record for the same image file: the
    upload is read by the same code (``ImageInputs.read``: decoded, brought to the model's size as its data were).

    # Parameters
    task: the trained captioning task; source: where it came from; examples: image files offered under the upload.
    """

    def __init__(self, task: Any, source: str, examples: Sequence[str] = ()) -> None:
        self.task, self.source, self.examples = task, source, list(examples)
        self.beam = int(task.seq2seq.beam_size or 1)
        self.every = STREAM_EVERY

    def answer(
        self,
        image: Optional[str],
        beam: int = 1,
        hypothesis: int = 1,
        progress: Optional[Callable[[list[str]], None]] = None,
    ) -> tuple[str, Optional[float], list, list, str, dict]:
        """One image's answer: caption, score, n best ([rank, caption, score] rows), the per-word overlays
        ([(image, word)]) of the ``hypothesis``-th best, a message (empty when all went well) and predict's record.
        ``image``: the file Gradio saved the upload to; ``progress``: called with the caption so far at each step."""
        item, message = read_upload(self.task, image)
        if item is None:
            return "", None, [], [], message, {}
        beam = max(1, min(int(beam), MAX_BEAM))
        options = DecodeOptions(beam_size=beam, n_best=min(beam, 5), attention=True, progress=progress)
        import torch

        with torch.no_grad():
            records, _ = self.task.predict_batch([item], [image], options, False)
        record = records[0]
        ranked = record.get("n_best", [{"output": record["output"], "score": record["score"]}])
        rows = [[rank, hyp["output"], hyp["score"]] for rank, hyp in enumerate(ranked, 1)]
        chosen = hypothesis_of(record, hypothesis)
        seen = item.numpy().transpose(1, 2, 0)  # (H, W, C) in [0, 1]: the image as the model read it
        overlays = [
            (attention_overlay(seen, row, self.task.inputs.grid), word)
            for word, row in zip(chosen.get("output_pieces", []), chosen.get("attention", []))
        ]
        return record["output"], record["score"], rows, overlays, "", record

    def stream(self, image: Optional[str], beam: int = 1, hypothesis: int = 1) -> Iterator[tuple]:
        """``answer``'s parts as the caption decodes: the caption so far while it decodes, then the answer."""

        def partial(outputs: list[str]) -> tuple:
            return (outputs[0], None, [], [], "", {})

        return streamed(lambda progress: self.answer(image, beam, hypothesis, progress), partial, self.every)


def read_upload(task: Any, image: Optional[str]) -> tuple[Any, str]:
    """An uploaded image as the task reads a ``predict`` line (its ``read_input``), or None and the message the page
    shows: no upload, a file that is not an image, one over ``MAX_PIXELS``, one the model refuses (its size)."""
    from eeap.model.prediction import Problems

    if not image:
        return None, "Upload an image first."
    not_image = "This file is not an image this page can read (PNG, JPEG, BMP, GIF)."
    if image == UNREADABLE:
        return None, not_image
    try:
        from PIL import Image

        with Image.open(image) as opened:
            width, height = opened.size
    except Exception:  # noqa: BLE001  (anything that is not an image: a message in the page)
        return None, not_image
    if width * height > MAX_PIXELS:
        return None, f"The image is {width}×{height}; this page takes at most {MAX_PIXELS:,} pixels."
    problems = Problems()
    item = task.read_input(image, 1, problems)
    if item is None:
        reason = "; ".join(m.removeprefix("line 1: ").replace(str(image), "the image") for m in problems.messages)
        return None, reason or "The model could not read this image."
    return item, ""


class ClassifierExplorer:
    """A classification model and what its page does with a text or an uploaded image: the class, every class's
    probability, and the pooling attention: over the text's tokens (each shaded by its weight, hovering shows it) or
    over the image's grid (laid over it). The answer is ``eeap predict --format jsonl --attention --n-best C``'s
    record (C: the number of classes).

    # Parameters
    task: the trained classifier; source: where it came from; max_chars: the longest text taken;
    examples: image files offered under the upload.
    """

    def __init__(self, task: Any, source: str, max_chars: int = MAX_CHARS, examples: Sequence[str] = ()) -> None:
        self.task, self.source, self.max_chars, self.examples = task, source, max_chars, list(examples)
        self.is_text = bool(task.info.is_text)

    def answer(self, given: Optional[str]) -> tuple[str, Optional[float], list, Any, str, dict]:
        """One input's answer: class, probability, every class's ([rank, class, probability] rows), the attention
        (highlighted text as HTML, or the overlay image), a message and predict's record."""
        import torch

        options = DecodeOptions(n_best=len(self.task.info.classes), attention=True)
        empty: Any = "" if self.is_text else None
        item: Any = None
        if self.is_text:
            text = (given or "").strip()
            if not text:
                return "", None, [], empty, "Type something first.", {}
            if len(text) > self.max_chars:
                too_long = f"The input is {len(text)} characters long; this page takes at most {self.max_chars}."
                return "", None, [], empty, too_long, {}
            records, problems = self.task.predict_lines([text], options)
            record, message = records[0], "; ".join(m.removeprefix("line 1: ") for m in problems.messages)
        else:
            item, message = read_upload(self.task, given)
            if item is None:
                return "", None, [], empty, message, {}
            with torch.no_grad():
                records, _ = self.task.predict_batch([item], [str(given)], options, False)
            record = records[0]
        if record is None:
            return "", None, [], empty, message or "The model could not read this input.", {}
        ranked = record.get("n_best", [{"output": record["output"], "score": record["score"]}])
        rows = [[rank, hyp["output"], hyp["score"]] for rank, hyp in enumerate(ranked, 1)]
        weights = record.get("attention")
        shown: Any = None
        if self.is_text:
            shown = highlighted_text(record.get("source_pieces", []), weights or [])
        elif weights:
            seen = item.numpy().transpose(1, 2, 0)  # (H, W, C) in [0, 1]
            shown = attention_overlay(seen, weights, self.task.embed.grid)
        return record["output"], record["score"], rows, shown, message, record


class SegmentationExplorer:
    """A segmentation model (2D) and what its page does with an uploaded image: the predicted mask (class indices, as
    ``eeap predict`` writes it: 0/255 for a binary model) drawn over the image, and each attention gate's
    coefficients, a map per level laid over the image (red: the gate lets the skip connection through).

    # Parameters
    task: the trained segmentation task; source: where it came from; examples: image files offered under the upload.
    """

    def __init__(self, task: Any, source: str, examples: Sequence[str] = ()) -> None:
        self.task, self.source, self.examples = task, source, list(examples)

    def answer(self, image: Optional[str]) -> tuple[Any, Any, list, str, dict]:
        """One image's answer: the mask (H, W) uint8 as predict writes it, the mask over the image, the gates' maps
        ([(overlay, level)]), a message and a summary (size, each class's share of the pixels, the gates' sizes)."""
        import numpy as np
        import torch

        item, message = read_upload(self.task, image)
        if item is None:
            return None, None, [], message, {}
        with torch.no_grad():
            logits, gates, _ = self.task(item[None].to(self.task.device))
        predicted = self.task.classes_of(logits)[0].cpu()  # (H, W)
        scale = 255 if self.task.info.binary else 1
        mask = (predicted.numpy() * scale).astype(np.uint8)  # as eeap predict writes it
        seen = item.numpy().transpose(1, 2, 0)  # (H, W, C) in [0, 1]
        rgb = np.repeat(seen, 3, axis=2) if seen.shape[2] == 1 else seen
        classes = max(int(predicted.max()), 1)
        colours = np.array([[0, 0, 0]] + [[214, 39, 40], [31, 119, 180], [44, 160, 44], [255, 127, 14]] * 64) / 255
        painted = colours[predicted.numpy()]  # (H, W, 3)
        chosen = (predicted.numpy() > 0)[..., None]
        over = (rgb * (1 - 0.5 * chosen) + painted * 0.5 * chosen).clip(0, 1)
        maps = [
            (
                attention_overlay(seen, gate[0, 0].flatten().tolist(), tuple(gate.shape[-2:]), scaled=False),
                f"gate {level}: {gate.shape[-2]}×{gate.shape[-1]}",
            )
            for level, gate in enumerate(gates, 1)
        ]
        shares = {str(c): round(float((predicted == c).float().mean()), 4) for c in range(classes + 1)}
        summary = {"size": list(mask.shape), "class_shares": shares, "gates": [list(g.shape[-2:]) for g in gates]}
        return mask, (over * 255).round().astype(np.uint8), maps, "", summary


class VolumeExplorer:
    """A 3D segmentation model and what its page does with an uploaded scan (NIfTI): the scan read as training read
    its volumes, segmented with the sliding window; the figure of axial, coronal and sagittal slices through the
    segmented region's centre, with each attention gate's coefficients and the prediction; the label volume as
    ``eeap predict`` writes it (the scan's grid, affine and header), to download and open over the scan in 3D Slicer
    or ITK-SNAP; and a summary (the grid, the voxel size, each class's volume in mL).

    # Parameters
    task: the trained segmentation task (``info.volume`` set); source: where it came from; folder: where the answers'
    files are written (served to the page).
    """

    def __init__(self, task: Any, source: str, folder: Path) -> None:
        self.task, self.source, self.folder = task, source, folder
        self.answers = 0
        self.read: Optional[tuple] = None  # the last scan's image, prediction and gates as the model read them

    def slices(self, x: float, y: float, z: float) -> tuple[Optional[str], str]:
        """The last scan's figure with its planes through another voxel: ``x``, ``y``, ``z`` in percent of the grid
        the model read (0: the first slice, 100: the last); and a message (empty when all went well)."""
        from eeap.model.plotting import save_figure

        if self.read is None:
            return None, "Segment a scan first; then the sliders move the planes through it."
        image, predicted, gates = self.read
        at = [round(min(max(float(p), 0.0), 100.0) / 100 * (n - 1)) for p, n in zip((x, y, z), image.shape[1:])]
        self.answers += 1
        figure = self.task.figure(image, predicted, gates, centre=at)
        return str(save_figure(figure, self.folder / f"{self.answers:05d}_planes.png")), ""

    def answer(self, scan: Optional[str]) -> tuple[Optional[str], Optional[str], str, dict]:
        """One scan's answer: the figure (PNG path), the label volume (.nii.gz path), a message and a summary."""
        import numpy as np
        import torch

        from eeap.model.plotting import save_figure
        from eeap.model.prediction import DecodeOptions, Problems

        if not scan:
            return None, None, "Upload a scan (.nii.gz or .nii) first.", {}
        problems = Problems()
        item = self.task.read_input(scan, 1, problems)
        if item is None:
            reason = "; ".join(m.removeprefix("line 1: ").replace(str(scan), "the file") for m in problems.messages)
            return None, None, reason or "The model could not read this scan.", {}
        self.answers += 1
        with torch.no_grad():
            records, figures = self.task.predict_batch([item], [scan], DecodeOptions(), True)
        self.read = records[0]["read"]
        written = self.task.write_output(records[0], self.folder, self.answers, scan)
        picture = save_figure(figures[0], self.folder / f"{self.answers:05d}_planes.png")
        labels = records[0]["mask"]  # (X, Y, Z) on the scan's grid
        voxel = float(np.prod(item.source.header.get_zooms()[:3])) / 1000.0  # mL
        classes = self.task.info.classes
        summary = {
            "grid": list(labels.shape),
            "voxel_mm": [round(float(z), 4) for z in item.source.header.get_zooms()[:3]],
            "class_ml": {name: round(float((labels == c).sum()) * voxel, 3) for c, name in enumerate(classes) if c},
        }
        return str(picture), written["output"], "", summary


def highlighted_text(pieces: Sequence[str], weights: Sequence[float]) -> str:
    """A text's pieces, each shaded by its pooling weight (``data-weight``; hovering shows it), as HTML."""
    if not weights:
        return "<p>This model has no attention to show.</p>"
    top = max(weights) or 1.0
    spans = "".join(
        f'<span class="w" data-weight="{w:.4f}" title="{html.escape(p)}: {w:.4f}" '
        f'style="background: rgba(214, 39, 40, {min(max(w / top, 0.0), 1.0):.3f})">{html.escape(p)}</span>'
        for p, w in zip(pieces, weights)
    )
    return f'<p class="eeap-highlight">{spans}</p>'


def attention_overlay(image: Any, weights: Sequence[float], grid: tuple[int, ...], scaled: bool = True) -> Any:
    """Attention over an image: ``weights`` (h·w, the grid's cells row by row) scaled to the image's size and laid
    over it in red, strongest where the weight is largest (``scaled``: relative to the largest; else as given, for
    coefficients in [0, 1] such as a gate's); (H, W, 3) uint8."""
    import numpy as np
    import torch

    cells = torch.tensor(weights, dtype=torch.float32).view(1, 1, *grid)  # (1, 1, h, w)
    resized = torch.nn.functional.interpolate(cells, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    top = resized.max().clamp(min=1e-8) if scaled else torch.tensor(1.0)
    heat = (resized / top).clamp(0, 1).numpy()[..., None]  # (H, W, 1) in [0, 1]
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    red = np.zeros_like(rgb)
    red[..., 0] = 1.0
    shown = rgb * (1 - 0.6 * heat) + red * 0.6 * heat  # (H, W, 3)
    return (shown.clip(0, 1) * 255).round().astype(np.uint8)


def example_images(task: Any, count: int = 6) -> list[str]:
    """A few images of the model's own data, offered under the upload: the first ``count`` image files of the
    folder its data section names (``images``, or ``root``'s ``images/``), where that folder is on this machine."""
    from eeap.data.images import IMAGE_SUFFIXES

    data = (getattr(task, "eeap_config", None) or {}).get("data", {})
    folder = Path(str(data["images"])) if data.get("images") else Path(str(data.get("root", ""))) / "images"
    if not data.get("images") and not data.get("root") or not folder.is_dir():
        return []
    found = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return found[:count]


def explorer_for(task: Any, source: str, max_chars: int = MAX_CHARS) -> Any:
    """The page of a trained task: a translation model's (``Explorer``) or a captioning model's
    (``CaptionExplorer``); others are refused in one line."""
    from eeap.model.seq2seq import ImageInputs

    if isinstance(getattr(task, "inputs", None), ImageInputs):
        return CaptionExplorer(task, source, example_images(task))
    if task.registered_name == "classification":
        return ClassifierExplorer(task, source, max_chars, example_images(task))
    if task.registered_name == "segmentation" and task.info.volume is not None:
        import tempfile

        return VolumeExplorer(task, source, Path(tempfile.mkdtemp(prefix="eeap-explore-")))
    if task.registered_name == "segmentation":
        return SegmentationExplorer(task, source, example_images(task))
    return Explorer(task, source, max_chars)


def hypothesis_of(record: dict, hypothesis: int) -> dict:
    """The ``hypothesis``-th best of ``record`` (predict's, with ``--attention``; 1 the best), its last where there are
    fewer."""
    ranked = record.get("n_best") or [record]
    return ranked[min(max(int(hypothesis), 1), len(ranked)) - 1]


def alignment_table(record: dict, head: str = "mean", hypothesis: int = 1) -> str:
    """The attention of ``record``'s ``hypothesis``-th best (predict's record, with ``--attention``) as an HTML
    table: a row per output piece, a column per source piece, each cell shaded by its weight, which hovering shows
    (``title``). Where the attention decides more than weights (``attention_details``), the table shows it: hard
    attention's chosen position (outlined; cells shaded by the probability it was drawn from), local attention's
    window (cells outside it hatched, p_t at the row's end), gated attention's shut positions (×, each gate's
    probability on hover)."""
    chosen = hypothesis_of(record, hypothesis)
    weights, head = shown_weights(chosen, head)
    if not weights:
        return "<p>This model has no attention to show.</p>"
    source = record.get("source_pieces") or [str(i) for i in range(len(weights[0]))]
    output = chosen.get("output_pieces") or [str(i) for i in range(len(weights))]
    details = chosen.get("attention_details") or {}
    ranked = len(record.get("n_best") or [record])
    which = f"hypothesis {min(max(int(hypothesis), 1), ranked)} of {ranked}, " if ranked > 1 else ""

    def shown(piece: str) -> str:
        return html.escape(piece.replace(" ", "␣"))

    head_row = "".join(f'<th class="src">{shown(p)}</th>' for p in source)
    rows = []
    for t, (out, row) in enumerate(zip(output, weights)):
        cells = []
        for s, (src, w) in enumerate(zip(source, row)):
            kind, shade, title, mark = "w", w, f"{shown(out)} ← {shown(src)}: {w:.4f}", ""
            if "choice" in details:  # hard
                shade = details["probability"][t][s]
                title += f" (probability {shade:.4f}{', chosen' if details['choice'][t] == s else ''})"
                kind += " chosen" if details["choice"][t] == s else ""
            elif "first" in details and not details["first"][t] <= s <= details["last"][t]:  # local
                kind, title = "w outside", title + " (outside the window)"
            elif "open" in details:  # gated
                title += f" (gate {details['gate'][t][s]:.4f}, {'open' if details['open'][t][s] else 'shut'})"
                kind, mark = ("w", "") if details["open"][t][s] else ("w shut", "×")
            cells.append(
                f'<td class="{kind}" data-weight="{w:.4f}" title="{title}" '
                f'style="background: rgba(31, 119, 180, {min(max(shade, 0.0), 1.0):.3f})">{mark}</td>'
            )
        rows.append(f'<tr><th class="out">{shown(out)}</th>{"".join(cells)}{row_note(details, t, source)}</tr>')
    return (
        '<table class="eeap-alignment" style="border-collapse: collapse">'
        f"<caption>where each output piece (row) looked in the input (columns): {which}{html.escape(head)}"
        f"{detail_caption(details)}</caption>"
        f"<tr><th></th>{head_row}</tr>{''.join(rows)}</table>"
    )


def shown_weights(chosen: dict, view: str) -> tuple[Any, str]:
    """The weights (output piece × source piece) that ``view`` names in a hypothesis' record: ``mean`` or ``head H``
    (of the last attending layer), ``layer L mean`` or ``layer L head H``; and what is shown, said for the caption
    (the mean, and why, where the model has no such head or layer)."""
    found = re.fullmatch(r"(?:layer (\d+) )?(mean|head (\d+))", view)
    layer, head = (int(found[1]) if found and found[1] else None), (int(found[3]) if found and found[3] else None)
    mean, heads = chosen.get("attention"), chosen.get("attention_heads") or []
    layers = chosen.get("attention_layers") or []
    if layer is not None:
        if layer > len(layers):
            return mean, f"mean (this model has {len(layers) or 'one'} attending layers)"
        kept = layers[layer - 1]  # (heads, steps, src_len) or (steps, src_len)
        has_heads = bool(kept) and bool(kept[0]) and isinstance(kept[0][0], list)
        heads = kept if has_heads else []
        mean = [[sum(cells) / len(heads) for cells in zip(*rows)] for rows in zip(*heads)] if has_heads else kept
    if head is None:
        return mean, view if found else "mean"
    if head > len(heads):
        return mean, f"mean (this model's attention has {len(heads) or 'no'} heads)"
    return heads[head - 1], view


def detail_caption(details: dict) -> str:
    """What the table shows of an attention's details, said under its caption."""
    if "choice" in details:
        return (
            "; hard attention: each row's chosen position outlined, cells shaded by the probability it was drawn from"
        )
    if "first" in details:
        return "; local attention: hatched cells are outside the window [p_t − D, p_t + D], p_t at each row's end"
    if "open" in details:
        return "; gated attention: × marks a position its gate shut (hover: the gate's probability)"
    return ""


def row_note(details: dict, t: int, source: Sequence[str]) -> str:
    """The cell after row ``t``: hard attention's chosen piece, local attention's p_t and window, gated attention's
    open count; none for other attentions."""
    if "choice" in details:
        text = f"→ {html.escape(source[details['choice'][t]].replace(' ', '␣'))}"
    elif "first" in details:
        text = f"p = {details['centre'][t]:.2f}, [{details['first'][t]}, {details['last'][t]}]"
    elif "open" in details:
        text = f"{sum(1 for g in details['open'][t] if g)} open"
    else:
        return ""
    return f'<td class="note">{text}</td>'


CSS = """
.eeap-alignment td.w { width: 1.6em; height: 1.6em; border: 1px solid #eee; }
.eeap-alignment th { font-family: monospace; font-weight: normal; padding: 0 0.3em; }
.eeap-alignment td.chosen { outline: 2px solid #d62728; outline-offset: -2px; }
.eeap-alignment td.outside { background: repeating-linear-gradient(45deg, #fff, #fff 3px, #ddd 3px, #ddd 5px) !important; }
.eeap-alignment td.shut { color: #999; text-align: center; font-size: 0.8em; }
.eeap-alignment td.note { font-family: monospace; color: #555; padding-left: 0.6em; white-space: nowrap; }
.eeap-highlight span.w { padding: 0.1em 0; border-radius: 0.2em; }
#eeap-image img, [id^="eeap-over"] img, [id^="eeap-attention"] img, [id^="eeap-mask"] img {
  width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated;
}
[id^="eeap-gates"] img { image-rendering: pixelated; }
"""


class RunView:
    """What a run folder shows of its training, read from the folder alone (no W&B, no network): the learning curve
    (``figures/learning_curve.png``, drawn when training ends), each validation's metrics (``csv/metrics.csv``, the
    ``csv`` logger's), and the fixed validation examples' attention figures at every validation
    (``figures/val_attention_<example>-step<step>.png``), which the page pages through with a step slider.

    # Parameters
    folder: the run folder.
    """

    FIGURE = re.compile(r"^val_attention_(\d+)-step(\d+)\.png$")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.figures: dict[tuple[int, int], Path] = {}
        figures = folder / "figures"
        if figures.is_dir():
            for path in figures.iterdir():
                found = self.FIGURE.match(path.name)
                if found:
                    self.figures[int(found.group(1)), int(found.group(2))] = path
        self.steps = sorted({step for _, step in self.figures})
        self.examples = sorted({example for example, _ in self.figures})
        curve = figures / "learning_curve.png"
        self.curve = str(curve) if curve.is_file() else None

    def metrics(self) -> tuple[list[str], list[list[Any]]]:
        """Each validation's metrics from the csv logger's file: headers (``step``, then ``val/...``) and rows."""
        import csv

        path = self.folder / "csv" / "metrics.csv"
        if not path.is_file():
            return ["step"], []
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        names = sorted({k for row in rows for k, v in row.items() if k.startswith("val/") and v})
        table = [
            [int(row["step"]), *(round(float(row[n]), 4) if row.get(n) else None for n in names)]
            for row in rows
            if any(row.get(n) for n in names)
        ]
        return ["step", *names], table

    def figure(self, example: int, step: int) -> tuple[Optional[str], str]:
        """Validation example ``example``'s attention figure at the validation nearest ``step`` (a file of this run
        folder; the page sends only the two numbers), and what it shows."""
        if not self.steps:
            return None, "This run folder has no validation figures (model.plot_examples: 0, or no validation yet)."
        nearest = min(self.steps, key=lambda s: abs(s - int(step)))
        path = self.figures.get((int(example), nearest))
        return (str(path) if path else None), f"example {int(example)} at step {nearest}"


def add_run_tab(gr: Any, run: RunView) -> None:
    """The run's tab: the learning curve, the validations' metrics, and an example's attention at a chosen step."""
    with gr.Tab("run"):
        gr.Markdown(f"`{run.folder}`: what the run folder holds of its training")
        if run.curve:
            gr.Image(run.curve, label="learning curve", interactive=False)
        headers, rows = run.metrics()
        gr.Dataframe(value=rows, headers=headers, label="each validation's metrics", interactive=False)
        if run.steps:
            with gr.Row():
                example = gr.Dropdown(run.examples, value=run.examples[0], label="validation example")
                step = gr.Slider(run.steps[0], run.steps[-1], value=run.steps[-1], step=1, label="step")
            shown = gr.Markdown(run.figure(run.examples[0], run.steps[-1])[1], elem_id="eeap-run-step")
            figure = gr.Image(run.figure(run.examples[0], run.steps[-1])[0], label="attention", interactive=False)

            def look(chosen: int, at: int) -> tuple:
                path, what = run.figure(chosen, at)
                return path, what

            step.change(look, [example, step], [figure, shown], api_name="run_figure")
            example.change(look, [example, step], [figure, shown], api_visibility="private")
        else:
            gr.Markdown(run.figure(0, 0)[1])


def build_app(explorers: Sequence[Any], run: Optional[RunView] = None) -> Any:
    """The page of the models (``explorer_for``'s, of one kind), with a tab of the run's training when a run folder
    was given (``run``)."""
    app = model_app(explorers)
    if run is None:
        return app
    import gradio as gr

    with gr.Blocks(title=app.title) as outer:
        with gr.Tab("model"):
            app.render()
        add_run_tab(gr, run)
    return outer


def model_app(explorers: Sequence[Any]) -> Any:
    """The page of the models: a translation, captioning, classification or segmentation page."""
    kinds = {type(explorer) for explorer in explorers}
    if len(kinds) > 1:
        names = " and ".join(explorer.task.registered_name for explorer in explorers)
        raise ConfigError(f"eeap explore: side by side needs two models of one task; got {names}")
    if kinds == {CaptionExplorer}:
        return build_caption_app(explorers)
    if kinds == {SegmentationExplorer}:
        return build_segmentation_app(explorers)
    if kinds == {VolumeExplorer}:
        return build_volume_app(explorers)
    if kinds == {ClassifierExplorer}:
        if len({explorer.is_text for explorer in explorers}) > 1:
            raise ConfigError("eeap explore: side by side needs two classifiers of one kind of input (text or images)")
        return build_classifier_app(explorers)
    return build_translation_app(explorers)


def model_columns(gr: Any, explorers: Sequence[Any]) -> Iterator[str]:
    """Each model's column of a page, side by side, headed by where the model came from and its size: yields, inside
    the column, the suffix of its elements' ids ("" for the first model, "-2" for the second)."""
    for number, explorer in enumerate(explorers):
        with gr.Column():
            parameters = sum(p.numel() for p in explorer.task.parameters())
            gr.Markdown(f"`{explorer.source}` · {parameters:,} parameters")
            yield "" if number == 0 else f"-{number + 1}"


def build_segmentation_app(explorers: Sequence[SegmentationExplorer]) -> Any:
    """The segmentation page: an image upload, each model's answer in its own column. Its endpoint ``/segment``
    (image → for each model: the mask as predict writes it (PNG), the mask over the image, the gates' maps, message,
    summary) is what the page calls and what ``gradio_client`` reaches."""
    import gradio as gr

    names = ", ".join(explorer.task.registered_name for explorer in explorers)
    with gr.Blocks(title=f"EEAP explore: {names}") as app:
        gr.Markdown(f"## EEAP explore: {names}")
        image = image_upload(
            gr, type="filepath", label="image", sources=["upload"], elem_id="eeap-image", height=IMAGE_HEIGHT
        )
        if explorers[0].examples:
            gr.Examples(explorers[0].examples, inputs=[image], label="images of the model's data")
        go = gr.Button("Segment", variant="primary")
        outputs: list = []
        with gr.Row():
            for suffix in model_columns(gr, explorers):
                message = gr.Markdown(elem_id=f"eeap-message{suffix}")
                over = gr.Image(
                    label="prediction over the image",
                    interactive=False,
                    elem_id=f"eeap-over{suffix}",
                    height=IMAGE_HEIGHT,
                )
                gates = gr.Gallery(
                    label="each attention gate's coefficients (red: the skip connection let through)",
                    columns=4,
                    height="auto",
                    elem_id=f"eeap-gates{suffix}",
                )
                mask = gr.Image(
                    label="mask (as eeap predict writes it)",
                    format="png",
                    interactive=False,
                    elem_id=f"eeap-mask{suffix}",
                    height=IMAGE_HEIGHT,
                )
                with gr.Accordion("summary", open=False):
                    summary = gr.JSON()
                outputs += [mask, over, gates, message, summary]

        def answer(path: Optional[str]) -> tuple:
            return tuple(part for explorer in explorers for part in explorer.answer(path))

        go.click(answer, [image], outputs, api_name="segment")
    return app


def build_volume_app(explorers: Sequence[VolumeExplorer]) -> Any:
    """The page of 3D segmentation: a scan upload (NIfTI), each model's answer in its own column, and three sliders
    that move the planes through the scan. Its endpoints ``/segment_volume`` (scan → for each model: the three-plane
    figure, the label volume, message, summary) and ``/slices`` (x, y, z in percent → for each model: the figure
    through that voxel, message) are what the page calls and what ``gradio_client`` reaches."""
    import gradio as gr

    names = ", ".join(explorer.task.registered_name for explorer in explorers)
    with gr.Blocks(title=f"EEAP explore: {names} (volumes)") as app:
        gr.Markdown(f"## EEAP explore: {names} (volumes)")
        scan = gr.File(label="scan (.nii.gz or .nii)", type="filepath", elem_id="eeap-scan")
        go = gr.Button("Segment", variant="primary")
        outputs: list = []
        moved: list = []
        with gr.Row():
            for suffix in model_columns(gr, explorers):
                message = gr.Markdown(elem_id=f"eeap-message{suffix}")
                planes = gr.Image(
                    label="axial, coronal, sagittal: the scan, each gate's coefficients, the prediction",
                    type="filepath",
                    interactive=False,
                    elem_id=f"eeap-planes{suffix}",
                )
                labels = gr.File(label="label volume (as eeap predict writes it)", elem_id=f"eeap-labels{suffix}")
                with gr.Accordion("summary", open=False):
                    summary = gr.JSON()
                outputs += [planes, labels, message, summary]
                moved += [planes, message]
        with gr.Row():  # where the planes cut: sagittal (x), coronal (y), axial (z), in percent of the grid
            sliders = [
                gr.Slider(0, 100, value=50, step=1, label=f"{plane} slice (%)", elem_id=f"eeap-slice-{axis}")
                for plane, axis in (("sagittal", "x"), ("coronal", "y"), ("axial", "z"))
            ]

        def answer(path: Optional[str]) -> tuple:
            return tuple(part for explorer in explorers for part in explorer.answer(path))

        def move(x: float, y: float, z: float) -> tuple:
            return tuple(part for explorer in explorers for part in explorer.slices(x, y, z))

        go.click(answer, [scan], outputs, api_name="segment_volume")
        sliders[0].release(move, sliders, moved, api_name="slices")
        for slider in sliders[1:]:
            slider.release(move, sliders, moved, api_visibility="private")
    return app


def build_classifier_app(explorers: Sequence[ClassifierExplorer]) -> Any:
    """The classification page: a text box (text models) or an image upload, each model's answer in its own column.
    Its endpoint ``/classify`` (text, or image → for each model: class, probability, every class's, the attention,
    message, record) is what the page calls and what ``gradio_client`` reaches."""
    import gradio as gr

    is_text = explorers[0].is_text
    names = ", ".join(explorer.task.registered_name for explorer in explorers)
    with gr.Blocks(title=f"EEAP explore: {names}") as app:
        gr.Markdown(f"## EEAP explore: {names}")
        given: Any
        if is_text:
            given = gr.Textbox(label="input", placeholder="type a text, then Enter", max_lines=3, elem_id="eeap-input")
        else:
            given = image_upload(
                gr, type="filepath", label="image", sources=["upload"], elem_id="eeap-image", height=IMAGE_HEIGHT
            )
            if explorers[0].examples:
                gr.Examples(explorers[0].examples, inputs=[given], label="images of the model's data")
        go = gr.Button("Classify", variant="primary")
        outputs: list = []
        with gr.Row():
            for suffix in model_columns(gr, explorers):
                label = gr.Textbox(label="class", interactive=False, elem_id=f"eeap-class{suffix}")
                probability = gr.Number(label="probability", interactive=False)
                message = gr.Markdown(elem_id=f"eeap-message{suffix}")
                attention: Any
                if is_text:
                    attention = gr.HTML(label="pooling attention", elem_id=f"eeap-attention{suffix}")
                else:
                    attention = gr.Image(
                        label="pooling attention over the image (red)",
                        interactive=False,
                        elem_id=f"eeap-attention{suffix}",
                        height=IMAGE_HEIGHT,
                    )
                classes = gr.Dataframe(headers=["rank", "class", "probability"], label="every class", interactive=False)
                with gr.Accordion("record (eeap predict --format jsonl --attention)", open=False):
                    record = gr.JSON()
                outputs += [label, probability, classes, attention, message, record]

        def answer(value: Optional[str]) -> tuple:
            return tuple(part for explorer in explorers for part in explorer.answer(value))

        go.click(answer, [given], outputs, api_name="classify")
        if is_text:
            given.submit(answer, [given], outputs, api_visibility="private")
    return app


def build_caption_app(explorers: Sequence[CaptionExplorer]) -> Any:
    """The captioning page (a ``gradio.Blocks``): one upload for every model, each model's answer in its own column.
    Its endpoint ``/caption`` (image, beam → for each model: caption, score, n best, the words' overlays, message,
    record) is what the page calls and what ``gradio_client`` reaches."""
    import gradio as gr

    names = ", ".join(explorer.task.registered_name for explorer in explorers)
    with gr.Blocks(title=f"EEAP explore: {names}") as app:
        gr.Markdown(f"## EEAP explore: {names}")
        with gr.Row():
            image = image_upload(gr, type="filepath", label="image", sources=["upload"], elem_id="eeap-image", scale=3)
            beam = gr.Slider(1, MAX_BEAM, value=explorers[0].beam, step=1, label="beam", scale=1)
            hypothesis = gr.Number(
                value=1, minimum=1, maximum=5, precision=0, label="hypothesis shown", scale=1, elem_id="eeap-hypothesis"
            )
        if explorers[0].examples:
            gr.Examples(explorers[0].examples, inputs=[image], label="images of the model's data")
        go = gr.Button("Caption", variant="primary")
        outputs: list = []
        tables: list = []
        with gr.Row():
            for suffix in model_columns(gr, explorers):
                caption = gr.Textbox(label="caption", interactive=False, elem_id=f"eeap-caption{suffix}")
                score = gr.Number(label="score (log-probability)", interactive=False)
                message = gr.Markdown(elem_id=f"eeap-message{suffix}")
                words = gr.Gallery(
                    label="where each word looked (red: its attention over the image as the model read it)",
                    columns=6,
                    height="auto",
                    elem_id=f"eeap-words{suffix}",
                )
                best = gr.Dataframe(
                    headers=["rank", "caption", "score"],
                    label="beam search's n best (choose one to see where its words looked)",
                    interactive=False,
                    elem_id=f"eeap-best{suffix}",
                )
                with gr.Accordion("record (eeap predict --format jsonl --attention)", open=False):
                    record = gr.JSON()
                outputs += [caption, score, best, words, message, record]
                tables.append(best)

        def answer(path: Optional[str], beam: int, hypothesis: Optional[float]) -> Iterator[tuple]:
            done: list[tuple] = [("", None, [], [], "", {})] * len(explorers)
            for i, explorer in enumerate(explorers):
                for part in explorer.stream(path, beam, int(hypothesis or 1)):
                    done[i] = part
                    yield tuple(piece for parts in done for piece in parts)

        go.click(answer, [image, beam, hypothesis], outputs, api_name="caption")
        hypothesis.change(answer, [image, beam, hypothesis], outputs, api_visibility="private")
        for best in tables:
            best.select(chosen_row(gr), None, hypothesis, api_visibility="private")
    return app


UNREADABLE = "\x00unreadable"  # what the upload hands the answer for a file that is not an image


def image_upload(gr: Any, **settings: Any) -> Any:
    """Gradio's image upload, except that a file it cannot open as an image reaches the answer as ``UNREADABLE`` (a
    message in the page) instead of failing the request before the answer runs. (Its ``preprocess`` is wrapped on
    the instance: a subclass of a Gradio component writes a ``.pyi`` file next to the module that defines it.)"""
    upload = gr.Image(**settings)
    opens = upload.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return opens(payload)
        except Exception:  # noqa: BLE001  (any file PIL cannot open)
            return UNREADABLE

    upload.preprocess = preprocess
    return upload


def build_translation_app(explorers: Sequence[Explorer]) -> Any:
    """The translation page (a ``gradio.Blocks``): one input for every model, each model's answer in its own column
    (two models side by side). Its one endpoint, ``/translate`` (text, beam, head, hypothesis → for each model:
    output, score, n best, alignment, message, record), is what the page calls and what ``gradio_client`` reaches;
    it streams: the output so far while a long input decodes, then the answer. Choosing a row of the n best (or its
    number) shows that hypothesis' own alignment."""
    import gradio as gr

    names = ", ".join(explorer.task.registered_name for explorer in explorers)
    views = max((explorer.views() for explorer in explorers), key=len)
    with gr.Blocks(title=f"EEAP explore: {names}") as app:
        gr.Markdown(f"## EEAP explore: {names}")
        with gr.Row():
            text = gr.Textbox(
                label="input", placeholder="type a sentence, then Enter", max_lines=1, scale=4, elem_id="eeap-input"
            )
            beam = gr.Slider(1, MAX_BEAM, value=explorers[0].beam, step=1, label="beam", scale=1)
            head = gr.Dropdown(views, value="mean", label="attention (layer, head)", scale=1)
            hypothesis = gr.Number(
                value=1, minimum=1, maximum=5, precision=0, label="hypothesis shown", scale=1, elem_id="eeap-hypothesis"
            )
        go = gr.Button("Translate", variant="primary")
        outputs: list = []
        tables: list = []
        with gr.Row():
            for suffix in model_columns(gr, explorers):
                output = gr.Textbox(label="output", interactive=False, elem_id=f"eeap-output{suffix}")
                score = gr.Number(label="score (log-probability)", interactive=False)
                message = gr.Markdown(elem_id=f"eeap-message{suffix}")
                alignment = gr.HTML(elem_id=f"eeap-alignment{suffix}")
                best = gr.Dataframe(
                    headers=["rank", "output", "score"],
                    label="beam search's n best (choose one to see its alignment)",
                    interactive=False,
                    elem_id=f"eeap-best{suffix}",
                )
                with gr.Accordion("record (eeap predict --format jsonl --attention)", open=False):
                    record = gr.JSON()
                outputs += [output, score, best, alignment, message, record]
                tables.append(best)

        def answer(text: str, beam: int, head: str, hypothesis: Optional[float]) -> Iterator[tuple]:
            done = [BLANK] * len(explorers)
            for i, explorer in enumerate(explorers):
                for part in explorer.stream(text, beam, head, int(hypothesis or 1)):
                    done[i] = part
                    yield tuple(piece for parts in done for piece in parts)

        inputs = [text, beam, head, hypothesis]
        go.click(answer, inputs, outputs, api_name="translate")
        text.submit(answer, inputs, outputs, api_visibility="private")
        head.change(answer, inputs, outputs, api_visibility="private")
        hypothesis.change(answer, inputs, outputs, api_visibility="private")
        for best in tables:
            best.select(chosen_row(gr), None, hypothesis, api_visibility="private")
    return app


def chosen_row(gr: Any) -> Callable[[Any], int]:
    """The handler of a click on an n-best table: the clicked row's rank."""

    def pick(event: Any) -> int:
        return int(event.index[0]) + 1

    pick.__annotations__ = {"event": gr.SelectData, "return": int}  # Gradio hands the click to a SelectData argument
    return pick


def serve(explorers: Sequence[Any], host: str, port: int, block: bool = True, run: Optional[RunView] = None) -> Any:
    """Start the page's server (no share link, queued requests, 1 MB uploads at most); the running app."""
    app = build_app(explorers, run)
    app.queue(default_concurrency_limit=1, max_size=64)
    volumes = [str(e.folder) for e in explorers if isinstance(e, VolumeExplorer)]
    allowed = ([str(run.folder / "figures")] if run is not None else []) + volumes
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        quiet=True,
        show_error=False,
        max_file_size="512mb" if volumes else "1mb",  # a CT scan is tens of MB
        ssr_mode=False,
        allowed_paths=allowed or None,  # the run's figures and the volume answers' files, no more
        prevent_thread_lock=not block,
        css=CSS,
    )
    return app


def main(argv: Sequence[str] | None = None, prog: str = "eeap explore") -> int:
    """``eeap explore MODEL [MODEL] [--host H] [--port P] [--max-chars N]``."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog,
        description="Serve a local web page where a trained model answers what you type and shows its attention.",
    )
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="MODEL",
        help="a checkpoint (.ckpt), a model folder, or a run folder (its best checkpoint); two: side by side",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="the port (default: 7860, Gradio's)")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help="the longest input the page takes")

    def body() -> int:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
        args = parser.parse_args(argv)
        if not 0 < args.port < 65536:
            raise DataError(f"--port must be between 1 and 65535, got {args.port}")
        if args.max_chars < 1:
            raise DataError(f"--max-chars must be at least 1, got {args.max_chars}")
        try:
            import gradio  # noqa: F401
        except ImportError:
            raise ConfigError("eeap explore needs Gradio: pip install 'eeap[explore]'") from None
        from eeap.model.checkpoints import load_task

        if len(args.targets) > 2:
            raise DataError(f"eeap explore shows one model, or two side by side; got {len(args.targets)}")
        paths = [find_model(target) for target in args.targets]
        explorers = [explorer_for(load_task(path).eval(), str(path), args.max_chars) for path in paths]
        given = Path(args.targets[0])
        run = RunView(given) if len(paths) == 1 and (given / "checkpoints").is_dir() else None
        try:
            app = serve(explorers, args.host, args.port, block=False, run=run)
        except OSError as e:
            reason = str(e).split(". You can specify")[0]
            raise DataError(f"--host {args.host} --port {args.port}: cannot listen there ({reason})") from None
        shown = " and ".join(str(path) for path in paths)
        print(f"EEAP explore: http://{args.host}:{args.port} ({shown}; Ctrl-C stops)", flush=True)
        app.block_thread()
        return 0

    return guarded(body, prog)
