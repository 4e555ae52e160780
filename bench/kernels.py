"""The date translator with EEAP's fused CPU kernels and with the plain torch reference, taking turns (A/B/A/B).

    python bench/kernels.py [--rounds 2] [key=value overrides of configs/translation/dates.yaml]

Each run is ``bench/translation.py`` in a fresh process (``kernels=fused``, then ``kernels=reference``, and again);
it prints each run's training tokens/s and time to 100% validation exact match, then min and median per backend and
the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args, overrides = parser.parse_known_args()
    results: dict[str, list[tuple[float, float]]] = {"fused": [], "reference": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for backend in results:
            out = subprocess.run(
                [sys.executable, str(HERE / "translation.py"), f"kernels={backend}", *overrides],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rate = float(re.search(r"training throughput: ([\d,]+)", out).group(1).replace(",", ""))
            reached = re.search(r"time to 100% validation exact match: ([\d.]+) s", out)
            seconds = float(reached.group(1)) if reached else float("nan")
            results[backend].append((rate, seconds))
            print(f"{backend:<10} {rate:>8,.0f} tokens/s   100% validation after {seconds:.1f} s", flush=True)
    load_after = os.getloadavg()
    for backend, runs in results.items():
        rates, times = [r for r, _ in runs], [t for _, t in runs]
        print(
            f"{backend:<10} tokens/s min {min(rates):,.0f} median {statistics.median(rates):,.0f}; "
            f"time to 100% min {min(times):.1f} s median {statistics.median(times):.1f} s"
        )
    print(
        f"load average (1, 5, 15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
