"""Greedy decoding of 10,000 dates in process: the eager model against its ONNX (onnxruntime) and torch.export
(.pt2) exports.

    python bench/export.py [--rounds 2] [--workdir /tmp/eeap-decode-bench]

Uses bench/decode.py's input and trained model (made there if missing). Target: exported ONNX greedy decoding within
1.5× of eager EEAP's time. Batches of 64 sentences; the runs take turns (eager, ONNX, torch.export, then again); min
and median; the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/eeap-decode-bench")
    args = parser.parse_args()
    work = Path(args.workdir)
    checkpoint = work / "eeap" / "checkpoints" / "last.ckpt"
    if not checkpoint.exists():
        sys.exit(f"{checkpoint} is missing: run bench/decode.py first (it trains the model and writes the input)")

    import eeap
    from eeap.data.text import pad
    from eeap.serving.export import Runner, export

    task = eeap.load(checkpoint)
    lines = (work / "dates.src").read_text().splitlines()
    batches = [pad([task.info.source.encode(line) for line in lines[i : i + 64]]) for i in range(0, len(lines), 64)]
    runners = {form: Runner(export(checkpoint, form, work / f"export-{form}")) for form in ("onnx", "export")}
    task = eeap.load(checkpoint)  # export chose the reference kernels; the eager model runs as users run it

    def eager() -> None:
        for src in batches:
            task.decode(src, 1)

    def exported(form: str) -> None:
        for src in batches:
            runners[form].decode(src, 1)

    systems = {"eager": eager, "ONNX": lambda: exported("onnx"), "torch.export": lambda: exported("export")}
    times: dict[str, list[float]] = {name: [] for name in systems}
    print(f"load average before: {os.getloadavg()}")
    for _ in range(args.rounds):
        for name, run in systems.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    for name, taken in times.items():
        ratio = statistics.median(taken) / statistics.median(times["eager"])
        print(f"{name:12} greedy: min {min(taken):.2f} s, median {statistics.median(taken):.2f} s ({ratio:.2f}× eager)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
