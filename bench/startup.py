"""Start-up time of the library and the ``eeap`` command (targets: ``import eeap`` and ``eeap components`` ≤ 2 s; a
typo in a model key of a config whose corpus has millions of pairs refused in < 2 s; ``eeap predict`` on one line
≤ 2 × ``import torch``, issue #28).

    python bench/startup.py [--repeat 5] [--checkpoint CKPT]

``eeap predict`` translates one line with a date translator's checkpoint: CKPT, or one trained first for a few steps
into a temporary folder.

Each command runs in a fresh Python process, the commands taking turns (A, B, C, ..., A, B, C, ...) so a change in the
machine's load touches them alike; it prints min and median wall time per command and the load average before and
after. ``import torch`` and ``import lightning`` are measured alongside as the floor a command pays once it needs them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARALLEL = str(ROOT / "configs" / "translation" / "parallel.yaml")
COMMANDS = {
    "import eeap": [sys.executable, "-c", "import eeap"],
    "eeap components": [sys.executable, "-m", "eeap.cli", "components"],
    "eeap components attend": [sys.executable, "-m", "eeap.cli", "components", "attend"],
    "eeap --help": [sys.executable, "-m", "eeap.cli", "--help"],
    # the whole config is checked from the sources before any data is read (exit 2, one line); the file is not opened
    "eeap train (a key typo)": [
        sys.executable,
        "-m",
        "eeap.cli",
        "train",
        PARALLEL,
        "data.train=corpus-of-millions.tsv",
        "model.encode.hiden=3",
    ],
    "import torch (floor)": [sys.executable, "-c", "import torch"],
    "import lightning (floor)": [sys.executable, "-c", "import lightning"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkpoint", default=None, help="a date translator's checkpoint (default: train one)")
    args = parser.parse_args()
    checkpoint = args.checkpoint or tiny_checkpoint(Path(tempfile.mkdtemp()))
    commands = {**COMMANDS, "eeap predict (one line)": [sys.executable, "-m", "eeap.cli", "predict", checkpoint]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    load_before = os.getloadavg()
    for _ in range(args.repeat):
        for name, command in commands.items():
            start = time.perf_counter()
            line = "4th of July, 1776\n" if "predict" in name else None
            done = subprocess.run(command, input=line, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode != (2 if "typo" in name else 0):
                sys.exit(f"{name}: exit {done.returncode}: {done.stderr[-2000:]}")
            times[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    print(f"{'command':<28} {'min':>7} {'median':>7}   ({args.repeat} runs each, taking turns)")
    for name, values in times.items():
        print(f"{name:<28} {min(values):>6.2f}s {statistics.median(values):>6.2f}s")
    print(
        f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} cores"
    )


def tiny_checkpoint(folder: Path) -> str:
    """A date translator trained for a few steps into ``folder``: its last checkpoint."""
    keys = ["logger=none", "trainer.enable_progress_bar=false", "trainer.max_steps=5", "data.train_size=500"]
    keys += ["data.val_size=20", "data.test_size=20", "test=false", f"run_dir={folder / 'run'}"]
    subprocess.run(
        [sys.executable, "-m", "eeap.cli", "train", "translation/dates", *keys], check=True, capture_output=True
    )
    return str(folder / "run" / "checkpoints" / "last.ckpt")


if __name__ == "__main__":
    main()
