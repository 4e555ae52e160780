"""Data at scale: a generated parallel corpus of N pairs through `configs/translation/parallel.yaml` (sentencepiece on
both sides), a first run (which prepares the data into its cache) and a second (which reuses it); or a generated
folder of N images and masks through `configs/segmentation/folder.yaml` (96 × 96 files resized to 64 × 64 as they are
read, a small U-Net).

For each run, in a fresh process: seconds to the first training step, peak RSS, whether it prepared, and the
training loader's throughput (samples/s, 200 batches) beside the training step's consumption.

    python bench/data_scale.py --pairs 1000000 [--dir /tmp/eeap-scale] [--runs 2]
    python bench/data_scale.py --images 20000 [--dir /tmp/eeap-scale]

The corpus, the image folder and the cache stay in --dir (delete it to measure a first run again).
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


def image_folder(root: Path, count: int) -> Path:
    """``count`` 96 × 96 PNG images of seeded shapes and their 0/255 masks, in ``root/images`` and ``root/masks``."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from eeap.tasks.segmentation.data import make_shapes
    from PIL import Image

    if (root / "masks" / f"{count - 1:06d}.png").is_file():
        return root
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 1000):
        batch = make_shapes(min(1000, count - start), 96, ["circle", "rectangle", "triangle"], True, 3, 0.05, start)
        for i, (image, mask) in enumerate(batch, start):
            Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(root / "images" / f"{i:06d}.png")
            Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{i:06d}.png")
    return root


def child(kind: str, source: str, cache: str) -> None:
    """One run in this process: train 20 steps, then time the training loader; print one JSON line."""
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

    if kind == "pairs":
        config = ROOT / "configs" / "translation" / "parallel.yaml"
        data_keys = [f"data.train={source}", f"data.cache_dir={cache}"]
    else:
        config = ROOT / "configs" / "segmentation" / "folder.yaml"
        data_keys = [
            f"data.root={source}",
            "data.image_size=[64,64]",
            "data.resize=true",
            "data.batch_size=16",
            "model.encode={type: unet_conv, channels: [16, 32, 64, 128]}",
            "model.predict.decoder_channels=null",
        ]
    keys = [
        *data_keys,
        "logger=none",
        "test=false",
        "trainer.max_steps=20",
        "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=0",
        f"run_dir={cache}/run-{time.time_ns()}",
    ]
    cfg = load_config(config, keys)
    prepares = kind == "images" or not list(Path(cache).glob("parallel-*/manifest.json"))
    train(cfg, callbacks=[FirstStep()])
    task, data = build_run(cfg)  # the cache again (reused), for the loader's throughput alone
    loader = data.train_dataloader()
    begin, seen = time.perf_counter(), 0
    for index, batch in enumerate(loader):
        seen += len(batch["src" if kind == "pairs" else "images"])
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
    parser.add_argument("--images", type=int, help="an image folder of this many images instead of a corpus")
    parser.add_argument("--dir", default="/tmp/eeap-scale")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SOURCE", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.images:
        kind, data = "images", image_folder(folder / f"images-{args.images}", args.images)
        print(f"image folder: {data} ({args.images} images and masks, {time.perf_counter() - start:.0f} s)")
        cache = folder / f"image-runs-{args.images}"
    else:
        kind, data = "pairs", corpus(folder / f"pairs-{args.pairs}.tsv", args.pairs)
        print(f"corpus: {data} ({data.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - start:.0f} s)")
        cache = folder / f"cache-{args.pairs}"
    cache.mkdir(exist_ok=True)
    for run in range(1, args.runs + 1):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(data), str(cache)], capture_output=True, text=True, cwd=ROOT
        )
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        prepared = "decoded on read" if kind == "images" else "prepared" if result.pop("prepared") else "reused"
        result.pop("prepared", None)
        print(f"run {run} ({prepared}): " + ", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
