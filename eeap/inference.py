"""Loading a trained task from its checkpoint, and the ``predict.py`` command line."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, Sequence

from eeap.errors import DataError


def load_task(path: str | Path, map_location: Any = "cpu") -> Any:
    """Rebuild a task from a checkpoint written by ``eeap train`` (config and vocabularies travel inside it)."""
    import torch

    from eeap.registry import DATA, TASK

    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  (any unreadable file gets the same one line)
        raise DataError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    meta = checkpoint.get("eeap") if isinstance(checkpoint, dict) else None
    if not meta or "config" not in meta:
        raise DataError(f"{path} is not an EEAP checkpoint (no 'eeap' section); was it written by train.py?")
    config = meta["config"]
    from eeap import kernels

    kernels.use(config.get("kernels", "auto"))
    info = DATA.get(config["data"]["type"]).info_class.from_state(meta["data_state"])
    task = TASK.build(config["model"], "model", info=info)
    task.load_state_dict(checkpoint["state_dict"])
    task.eeap_config, task.eeap_data_state = config, meta["data_state"]
    return task.eval()


def main(argv: Sequence[str] | None = None, prog: str = "predict.py") -> int:
    """``predict.py CHECKPOINT [--input FILE|-] [--output FILE] [--beam N] [--plot-attention DIR] [--out-dir DIR]``."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(prog=prog, description="Run a trained EEAP model on new input.")
    parser.add_argument("checkpoint", help="a .ckpt written by train.py (e.g. runs/dates/<time>/checkpoints/last.ckpt)")
    parser.add_argument("--input", default="-", help="input file, one example per line; - reads standard input")
    parser.add_argument("--output", default="-", help="output file; - writes standard output")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the model's test beam size)")
    parser.add_argument("--batch-size", type=int, default=64, help="examples per batch")
    parser.add_argument("--plot-attention", metavar="DIR", default=None, help="write an attention PNG per example")
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
    from eeap.data import decode_text, read_text
    from eeap.paths import writable_file, writable_folder, write_atomically

    if args.beam is not None and args.beam < 1:
        raise DataError(f"--beam must be at least 1, got {args.beam}")
    if args.batch_size < 1:
        raise DataError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.input != "-" and not Path(args.input).is_file():
        raise DataError(f"--input: file not found: {args.input}")
    if args.output != "-":
        writable_file(Path(args.output), "--output")
    for key, folder in (("--plot-attention", args.plot_attention), ("--out-dir", args.out_dir)):
        if folder:
            writable_folder(Path(folder), key)
    task = load_task(args.checkpoint)
    extra = {"out_dir": args.out_dir} if "out_dir" in inspect.signature(task.predict_lines).parameters else {}
    if args.out_dir and not extra:
        raise DataError(f"--out-dir: a {task.registered_name} model writes no files; its outputs are lines")
    if args.input == "-":
        lines = decode_text(sys.stdin.buffer.read(), "standard input", "--input").splitlines()
    else:
        lines = read_text(Path(args.input), "--input").splitlines()
    outputs, problems = task.predict_lines(
        lines, beam_size=args.beam, batch_size=args.batch_size, plot_dir=args.plot_attention, **extra
    )
    for message in problems.messages:
        print(f"warning: {message}", file=sys.stderr)
    text = "".join(o + "\n" for o in outputs)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_atomically(Path(args.output), text)
    return 1 if problems.skipped else 0


class Problems:
    """What went wrong with which input lines: messages for the user, and how many lines were skipped."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.skipped = 0

    def skip(self, message: str) -> None:
        self.messages.append(message)
        self.skipped += 1

    def warn(self, message: str) -> None:
        self.messages.append(message)
