"""Data at scale: a generated parallel corpus of N pairs through `configs/translation/parallel.yaml` (sentencepiece on
both sides), a first run (which prepares the data into its cache) and a second (which reuses it), in one process or
in N CPU DDP processes; or a generated folder of N images and masks through `configs/segmentation/folder.yaml` (96 × 96
files decoded and resized to 64 × 64 once, into the cache, a small U-Net); or the date translator's training step with its splits in
memory against the same splits read from the cache's Arrow files (read row by row), by turns.

For each run, in a fresh process (each rank): seconds to the first training step, peak RSS up to training (reading or
preparing the data, building the model) and during training (20 steps), peak private memory (anonymous pages: what the
kernel cannot drop), the pages of the cache's files that are mapped and resident, whether it prepared, and the training
loader's throughput (samples/s, 200 batches) beside the training step's consumption.

    python bench/data_scale.py --pairs 1000000 [--ranks 2] [--runs 2] [--full-pass] [--dir /tmp/eeap-scale]
    python bench/data_scale.py --images 20000 [--dir /tmp/eeap-scale]
    python bench/data_scale.py --dates [--rounds 2] [--steps 300]

The corpus, the image folder and the cache stay in --dir (delete it to measure a first run again). --full-pass also
reads the whole train split through its loader after training (one process) and reports the memory after it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    from PIL import Image

    from eeap.tasks.segmentation.data import make_shapes

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


def memory(mapped_under: str = "") -> dict:
    """This process's memory in MB from /proc: resident now and at its peak, private (anonymous) now, and (given a
    folder) the resident pages of files mapped from under it."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                fields[key] = int(value.split()[0]) / 1024
    if mapped_under:
        fields["mapped"], current = 0.0, ""
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split()
                if head and "-" in head[0] and ":" not in head[0]:  # a mapping's first line: range, ..., path
                    current = head[5] if len(head) > 5 else ""
                elif head and head[0] == "Rss:" and current.startswith(mapped_under):
                    fields["mapped"] += int(head[1]) / 1024
    return fields


def child(kind: str, source: str, cache: str, full_pass: str = "0", ranks: str = "1") -> None:
    """One run in this process (each rank runs it under DDP): train 20 steps, then time the training loader; print
    one JSON line."""
    sys.path.insert(0, str(ROOT))
    from lightning.pytorch.callbacks import Callback

    from eeap.config.loader import load_config
    from eeap.training.experiment import Experiment
    from eeap.training.run import train

    started = time.perf_counter()

    class Probe(Callback):
        at = None
        steps: list = []
        private = 0.0
        prepared = None
        rank = 0
        peak_before_training = 0.0

        def on_fit_start(self, trainer, module):
            Probe.prepared, Probe.rank = trainer.datamodule.prepared_here, trainer.global_rank

        def on_train_start(self, trainer, module):
            Probe.peak_before_training = memory()["VmHWM"]
            with open("/proc/self/clear_refs", "w") as f:  # peak RSS from here on: the training's alone
                f.write("5")

        def on_train_batch_start(self, trainer, module, batch, index):
            self.begin = time.perf_counter()
            if Probe.at is None:
                Probe.at = self.begin - started

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            Probe.steps.append(time.perf_counter() - self.begin)
            Probe.private = max(Probe.private, memory()["RssAnon"])

    if kind == "pairs":
        config = ROOT / "configs" / "translation" / "parallel.yaml"
        data_keys = [f"data.train={source}", f"data.cache_dir={cache}", "model.optim.scheduler=none"]
    else:
        config = ROOT / "configs" / "segmentation" / "folder.yaml"
        data_keys = [
            f"data.root={source}",
            f"data.cache_dir={cache}",
            "data.image_size=[64,64]",
            "data.resize=true",
            "data.batch_size=16",
            "model.encode={type: unet_conv, channels: [16, 32, 64, 128]}",
            "model.predict.decoder_channels=null",
        ]
    if int(ranks) > 1:
        data_keys += ["trainer.accelerator=cpu", f"trainer.devices={ranks}", "trainer.strategy=ddp"]
    keys = [
        *data_keys,
        "logger=none",
        "test=false",
        "trainer.max_steps=20",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=0",
        f"run_dir={cache}/run-{ranks}-{int(time.time())}",
    ]
    cfg = load_config(config, keys)
    train(cfg, callbacks=[Probe()])
    trained = memory(cache)
    task, data = Experiment.from_config(cfg).build()  # the cache again (reused), for the loader's throughput alone
    loader = data.train_dataloader()
    begin, seen = time.perf_counter(), 0
    for index, batch in enumerate(loader):
        seen += len(batch["src" if kind == "pairs" else "images"])
        if index == 199:
            break
    throughput = seen / (time.perf_counter() - begin)
    result = {
        "rank": Probe.rank,
        "first_step_s": round(Probe.at, 1),
        "peak_rss_mb": round(Probe.peak_before_training),  # the process's peak up to training (preparing, building)
        "training_peak_rss_mb": round(trained["VmHWM"]),  # the peak while training (before the loader is timed)
        "peak_private_mb": round(Probe.private),
        "mapped_mb": round(trained.get("mapped", 0)),
        "prepared": Probe.prepared,
        "loader_samples_s": round(throughput),
        "step_samples_s": round(data.batch_size / sorted(Probe.steps[5:])[len(Probe.steps[5:]) // 2]),
    }
    if full_pass == "1":  # every batch of the train split, then the memory
        for _batch in loader:
            pass
        after = memory(cache)
        result.update(full_pass_rss_mb=round(after["VmRSS"]), full_pass_mapped_mb=round(after["mapped"]))
    print("RESULT " + json.dumps(result), flush=True)


def dates_child(mode: str, steps: str) -> None:
    """The date translator (dates.yaml as shipped) for ``steps`` training steps, its splits in memory (``lists``) or
    written to the cache's format and read back row by row (``arrow``); print the median step time."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from eeap.data.prepared import read, write
    from eeap.training.experiment import Experiment

    task, data = Experiment.from_config(ROOT / "configs" / "translation" / "dates.yaml", ["logger=none"]).build()
    if mode == "arrow":
        folder = Path(tempfile.mkdtemp()) / "dates"
        write(folder, data, data.splits, data.info(), {})
        data.splits = read(folder, data)[0]

    class Steps(Callback):
        times: list = []

        def on_train_batch_start(self, trainer, module, batch, index):
            self.begin = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            Steps.times.append(time.perf_counter() - self.begin)

    # the whole step as the loop sees it: the loader's next batch, forward, backward, optimizer
    class Between(Callback):
        times: list = []
        last = None

        def on_train_batch_start(self, trainer, module, batch, index):
            now = time.perf_counter()
            if Between.last is not None:
                Between.times.append(now - Between.last)
            Between.last = now

    trainer = L.Trainer(
        max_steps=int(steps),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        callbacks=[Steps(), Between()],
    )
    trainer.fit(task, datamodule=data)
    warm = slice(20, None)
    loads = []  # the training loader alone, after training: what a batch costs to read and collate
    for _ in range(3):
        begin = time.perf_counter()
        for index, _batch in enumerate(data.train_dataloader()):
            if index == 99:
                break
        loads.append((time.perf_counter() - begin) / 100)
    print(
        "RESULT "
        + json.dumps(
            {
                "train_type": type(data.splits["train"]).__name__,
                "step_ms": round(1000 * sorted(Steps.times[warm])[len(Steps.times[warm]) // 2], 2),
                "batch_to_batch_ms": round(1000 * sorted(Between.times[warm])[len(Between.times[warm]) // 2], 2),
                "loader_ms": round(1000 * min(loads), 3),
            }
        ),
        flush=True,
    )


def results(command: list) -> list[dict]:
    """Run a child command; its RESULT lines (one per rank)."""
    out = subprocess.run([sys.executable, __file__, *command], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]


def dates(rounds: int, steps: int) -> None:
    """In memory against the cache's Arrow files, A/B/A/B, each in a fresh process."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    seen: dict = {"lists": [], "arrow": []}
    for round_ in range(1, rounds + 1):
        for mode in ("lists", "arrow"):
            (result,) = results(["--dates-child", mode, str(steps)])
            seen[mode].append(result)
            print(
                f"round {round_}, {mode} ({result['train_type']}): step {result['step_ms']} ms, "
                f"batch to batch {result['batch_to_batch_ms']} ms, loader alone {result['loader_ms']} ms a batch"
            )
    for mode, runs in seen.items():
        for key in ("step_ms", "batch_to_batch_ms", "loader_ms"):
            values = sorted(r[key] for r in runs)
            print(f"{mode} {key}: min {values[0]}, median {values[len(values) // 2]}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, help="an image folder of this many images instead of a corpus")
    parser.add_argument("--dates", action="store_true", help="the date translator's step: in memory against Arrow")
    parser.add_argument("--ranks", type=int, default=1, help="CPU DDP processes (--pairs)")
    parser.add_argument("--full-pass", action="store_true", help="then read the whole train split (one process)")
    parser.add_argument("--dir", default="/tmp/eeap-scale")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--dates-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.dates_child:
        dates_child(*args.dates_child)
        return
    if args.dates:
        dates(args.rounds, args.steps)
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
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    full = "1" if args.full_pass and args.ranks == 1 else "0"
    for run in range(1, args.runs + 1):
        for result in sorted(
            results(["--child", kind, str(data), str(cache), full, str(args.ranks)]), key=lambda r: r["rank"]
        ):
            prepared = result.pop("prepared")
            done = "prepared" if prepared else "reused"
            print(f"run {run}, rank {result.pop('rank')} ({done}): " + ", ".join(f"{k} {v}" for k, v in result.items()))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
