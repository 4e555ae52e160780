"""The ``predict.py`` command line (``eeap predict``): a trained model on new input, one example per line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from eeap.errors import DataError
from eeap.model.checkpoints import load_task
from eeap.model.prediction import DecodeOptions

PRECISIONS = {"32": None, "bf16": "bfloat16", "16": "float16"}


def main(argv: Sequence[str] | None = None, prog: str = "predict.py") -> int:
    """``predict.py CHECKPOINT [--input FILE|-] [--output FILE] [--beam N] [--n-best K] [--format text|jsonl] ...``."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog,
        description="Run a trained EEAP model on new input, one example per line. From standard input, each output "
        "is written as soon as its line is decoded.",
    )
    parser.add_argument(
        "checkpoint",
        help="a .ckpt written by train.py (e.g. runs/dates/<time>/checkpoints/last.ckpt), or a model folder "
        "(eeap export --format folder)",
    )
    parser.add_argument(
        "--input",
        default="-",
        help="input file, one example per line; - reads standard input; for segmentation models also one image or "
        "NIfTI scan, or a folder of them",
    )
    parser.add_argument("--output", default="-", help="output file; - writes standard output")
    parser.add_argument(
        "--format",
        choices=("text", "jsonl", "coco"),
        default="text",
        help="text: the output (n lines with --n-best n); jsonl: one JSON object per input line with its score; "
        'coco (captioning): the COCO results file, [{"image_id": ..., "caption": ...}], an evaluation server reads',
    )
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the model's test beam size)")
    parser.add_argument("--n-best", type=int, default=1, help="report the n best hypotheses (classes), best first")
    parser.add_argument("--length-penalty", type=float, default=None, help="GNMT's alpha (default: the model's)")
    parser.add_argument("--coverage", type=float, default=0.0, help="GNMT's coverage penalty beta (default: 0, off)")
    parser.add_argument("--attention", action="store_true", help="jsonl records carry the attention weights")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per batch")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (cuda when there is one)")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="32", help="32, or bf16 / 16 autocast")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, one for search)")
    parser.add_argument("--plot-attention", metavar="DIR", default=None, help="write an attention PNG per example")
    parser.add_argument(
        "--maps",
        action="store_true",
        help="volume segmentation: also write each class's probability and each gate's coefficients as NIfTI volumes "
        "on the scan's grid, beside its labels",
    )
    parser.add_argument(
        "--out-dir",
        metavar="DIR",
        default=None,
        help="where tasks that output files (segmentation masks) write them (default: predictions/)",
    )

    def body() -> int:
        from eeap.faults import stop_on_signals

        with stop_on_signals():
            return predict(parser.parse_args(argv))

    return guarded(body, prog)


def predict(args: Any) -> int:
    """The body of ``predict.py``: every check of the command line first, then the model, then the lines."""
    import torch

    from eeap import threads
    from eeap.paths import writable_file, writable_folder, write_atomically

    options = DecodeOptions(
        args.beam, args.n_best, args.length_penalty, args.coverage, args.batch_size, args.attention, args.maps
    )
    for key, value in (
        ("--beam", args.beam),
        ("--n-best", args.n_best),
        ("--batch-size", args.batch_size),
        ("--threads", args.threads),
    ):
        if value is not None and value < 1:
            raise DataError(f"{key} must be at least 1, got {value}")
    if args.coverage < 0:
        raise DataError(f"--coverage must be at least 0, got {args.coverage}")
    if args.attention and args.format != "jsonl":
        raise DataError("--attention: the weights are written in jsonl records; add --format jsonl")
    if args.input != "-" and not Path(args.input).exists():
        raise DataError(f"--input: file not found: {args.input}")
    if args.output != "-":
        writable_file(Path(args.output), "--output")
    for key, folder in (("--plot-attention", args.plot_attention), ("--out-dir", args.out_dir)):
        if folder:
            writable_folder(Path(folder), key)
    device = choose_device(args.device)
    threads.use(args.threads)
    task = load_task(args.checkpoint, map_location=device).to(device)
    extra = {"out_dir": args.out_dir} if task.writes_files else {}
    if args.out_dir and not extra:
        raise DataError(f"--out-dir: a {task.registered_name} model writes no files; its outputs are lines")
    if args.format == "coco" and task.registered_name != "captioning":
        raise DataError(f"--format coco: the COCO results file holds captions; this is a {task.registered_name} model")
    dtype = PRECISIONS[args.precision]
    autocast = torch.autocast(device.type, getattr(torch, dtype)) if dtype else contextlib.nullcontext()
    chunks = (
        read_stdin_chunks(args.batch_size)
        if args.input == "-"
        else iter([input_lines(Path(args.input), task.writes_files)])
    )
    written, skipped = [], 0
    results: list[dict] = []
    first = 1
    for lines, undecodable in chunks:
        records: list[Optional[dict]] = [None] * len(lines)
        start = 0
        for index in [*sorted(undecodable), len(lines)]:  # the decodable runs go to the task, a batch at a time
            if index > start:
                with autocast:
                    records[start:index], problems = task.predict_lines(
                        lines[start:index], options, args.plot_attention, first + start, **extra
                    )
                for message in problems.messages:
                    print(f"warning: {message}", file=sys.stderr)
                skipped += problems.skipped
            if index < len(lines):
                print(f"warning: line {first + index}: {undecodable[index]}; skipped", file=sys.stderr)
                skipped += 1
            start = index + 1
        if args.format == "coco":  # one JSON array at the end: the images captioned, each by its id
            results += [
                {"image_id": coco_image_id(line), "caption": record["output"]}
                for line, record in zip(lines, records)
                if record is not None
            ]
            first += len(lines)
            continue
        text = "".join(
            render(record, line, number, args.format, args.n_best)
            for number, (line, record) in enumerate(zip(lines, records), first)
        )
        if args.output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            written.append(text)
        first += len(lines)
    if args.format == "coco":
        written = [json.dumps(results, ensure_ascii=False) + "\n"]
        if args.output == "-":
            sys.stdout.write(written[0])
    if args.output != "-":
        write_atomically(Path(args.output), "".join(written))
    return 1 if skipped else 0


def coco_image_id(line: str) -> Any:
    """An image's COCO id from its file's name: the number its name ends with (``COCO_val2014_000000391895.jpg`` →
    391895), else the name without its suffix."""
    import re

    stem = Path(line.strip()).stem
    number = re.search(r"(\d+)$", stem)
    return int(number.group(1)) if number else stem


def choose_device(name: str) -> Any:
    """``--device``: cpu, cuda, cuda:N, or auto (cuda when there is one)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DataError(f"--device: '{name}' is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"--device {name}: no CUDA device here; use cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise DataError(f"--device: '{name}' is not supported; use cpu, cuda, cuda:N or auto")
    return device


def render(record: Optional[dict], line: str, number: int, form: str, n_best: int) -> str:
    """One input's output: text (its output, or its n best, a line each; an empty line for a skipped input), or one
    JSON object (``line``, ``input``, then the record; ``output: null`` for a skipped input)."""
    if form == "jsonl":
        return json.dumps({"line": number, "input": line, **(record or {"output": None})}, ensure_ascii=False) + "\n"
    if record is None:
        return "\n" * n_best  # keeps the outputs in step with the inputs
    if n_best > 1 and "n_best" in record:
        return "".join(h["output"] + "\n" for h in record["n_best"])
    return record["output"] + "\n"


Lines = tuple[list[str], dict[int, str]]  # lines, and the undecodable ones' messages by index


FILE_INPUTS = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def input_lines(path: Path, reads_files: bool) -> Lines:
    """``--input``'s lines: a text file's (one input per line); for a model whose outputs are files (segmentation:
    its inputs are images or scans), also one such file itself (``--input scan.nii.gz``) or a folder's files of
    those kinds, sorted."""
    if path.is_dir():
        if not reads_files:
            raise DataError(f"--input: {path} is a folder; this model reads its inputs as lines of a text file")
        files = sorted(str(f) for f in path.iterdir() if f.is_file() and f.name.lower().endswith(FILE_INPUTS))
        if not files:
            raise DataError(f"--input: {path} holds no image or NIfTI files ({', '.join(FILE_INPUTS)})")
        return files, {}
    if reads_files and path.name.lower().endswith(FILE_INPUTS):
        return [str(path)], {}
    return decode_lines(path.read_bytes())


def decode_lines(data: bytes) -> Lines:
    """Bytes as lines of UTF-8 text; a line that is not UTF-8 is kept (its bad bytes replaced, for ``--format
    jsonl``'s ``input``) and named in the messages, by its index, so ``predict`` skips it as it skips an empty one."""
    lines, undecodable = [], {}
    for index, raw in enumerate(data.splitlines()):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            lines.append(raw.decode("utf-8", errors="replace"))
            undecodable[index] = f"not UTF-8 text (bytes {raw[e.start : e.end]!r})"
    return lines, undecodable


def read_stdin_chunks(batch_size: int) -> Iterator[Lines]:
    """Standard input's lines (``decode_lines``), a batch at a time, as they arrive: each read returns what is there
    (a whole piped file comes in large reads, a typed line alone), its complete lines are yielded at once in batches
    of at most ``batch_size``, so a user typing gets each answer right after pressing Enter."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in without a file descriptor (a test's, a notebook's)
        fd = None
    pending = b""
    while True:
        data = sys.stdin.buffer.read() if fd is None else os.read(fd, 1 << 16)
        if data:
            pending += data
            cut = pending.rfind(b"\n") + 1
            complete, pending = pending[:cut], pending[cut:]
        else:
            complete, pending = pending, b""
        if complete:
            lines, undecodable = decode_lines(complete)
            for start in range(0, len(lines), batch_size):
                part = {i - start: m for i, m in undecodable.items() if start <= i < start + batch_size}
                yield lines[start : start + batch_size], part
        if not data:
            return
