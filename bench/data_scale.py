"""Data at scale: a generated parallel corpus of N pairs through `configs/translation/parallel.yaml` (sentencepiece on
both sides), a first run (which prepares the data into its cache) and a second (which reuses it).

For each run, in a fresh process: seconds to the first training step, peak RSS, whether it prepared, and the
training loader's throughput (samples/s, 200 batches) beside the training step's consumption.

    python bench/data_scale.py --pairs 1000000 [--dir /tmp/eeap-scale] [--runs 2]

The corpus and the cache stay in --dir (delete it to measure a first run again).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "su", "te", "ra", "no", "vi") for b in ("n", "s", "ta", "re", "mo", "")]


def corpus(path: Path, pairs: int) -> Path:
    """A TSV of ``pairs`` made-up sentence pairs (the target: the source's words reversed and suffixed)."""
    if path.is_file() and path.stat().st_size > 0:
        return path
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(pairs):
            words = rng.choices(WORDS, k=rng.randint(4, 18))
            f.write(" ".join(words) + "\t" + " ".join(w + "x" for w in reversed(words)) + "\n")
    return path


def child(train_file: str, cache: str) -> None:
    """One run in this process: train 5 steps, then time the training loader; print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from lightning.pytorch.callbacks import Callback

    from eeap.config import load_config
    from eeap.run import build_run, train

    started = time.perf_counter()

    class FirstStep(Callback):
        at = None
        steps: list = []

        def on_train_batch_start(self, trainer, module, batch, index):
            self.begin = time.perf_counter()
            if FirstStep.at is None:
                FirstStep.at = self.begin - started

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            FirstStep.steps.append(time.perf_counter() - self.begin)

    keys = [
        f"data.train={train_file}",
        f"data.cache_dir={cache}",
        "logger=none",
        "test=false",
        "trainer.max_steps=20",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=0",
        f"run_dir={cache}/run-{time.time_ns()}",
    ]
    cfg = load_config(ROOT / "configs" / "translation" / "parallel.yaml", keys)
    prepares = not list(Path(cache).glob("parallel-*/manifest.json"))
    train(cfg, callbacks=[FirstStep()])
    task, data = build_run(cfg)  # the cache again (reused), for the loader's throughput alone
    loader = data.train_dataloader()
    begin, seen = time.perf_counter(), 0
    for index, batch in enumerate(loader):
        seen += len(batch["src"])
        if index == 199:
            break
    throughput = seen / (time.perf_counter() - begin)
    step = sorted(FirstStep.steps[5:])[len(FirstStep.steps[5:]) // 2]  # median step after warm-up
    print(
        json.dumps(
            {
                "first_step_s": round(FirstStep.at, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "prepared": prepares,
                "loader_samples_s": round(throughput),
                "step_samples_s": round(data.batch_size / step),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--dir", default="/tmp/eeap-scale")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("TRAIN", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = corpus(folder / f"pairs-{args.pairs}.tsv", args.pairs)
    print(f"corpus: {data} ({data.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - start:.0f} s)")
    cache = folder / f"cache-{args.pairs}"
    for run in range(1, args.runs + 1):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(data), str(cache)], capture_output=True, text=True, cwd=ROOT
        )
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        prepared = "prepared" if result.pop("prepared") else "reused"
        print(f"run {run} ({prepared}): " + ", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
