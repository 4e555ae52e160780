"""Attention U-Net training speed and Dice, against MONAI's AttentionUnet with the same channel widths on the same data.

    python bench/segmentation.py [--config configs/segmentation/cluttered.yaml] [--seeds 0 1 2]
        [--monai /tmp/monai/bin/python] [--gates] [--variant NAME='key=value ...'] [key=value overrides]

For each seed, back to back (A/B/A/B across seeds): EEAP trains the config (with the overrides) and reports training
images/s (training batches only, after 5 warm-up batches) and test Dice of the weights after the last epoch (pooled
over the test split's foreground pixels, as the baseline scores it; no best-checkpoint choice). ``--gates`` also
trains the same model with ``model.attend=none`` (a plain U-Net) and reports the Dice gap the attention gates make.
``--variant`` trains further EEAP variants (overrides on top), to see where speed and Dice go. With ``--monai``,
the same train and test splits are written to an .npz and ``bench/monai_baseline.py`` trains MONAI's AttentionUnet
on them in that interpreter's environment with the same epochs, batch size, optimizer, schedule and flips.
The summary gives each system's images/s (min and median over seeds) and mean Dice, and the load of the machine.

GPU reference (the issue: bf16, channels_last, batch 32, 256 × 256): MONAI's AttentionUnet did 1,046 images/s on an
H100. Target: at least 1.3× that, with equal or better Dice. On a GPU machine:

    python bench/segmentation.py --monai PY trainer.accelerator=gpu trainer.precision=bf16-mixed \\
        model.channels_last=true data.batch_size=32 data.image_size=256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MONAI_GPU_IMAGES_PER_S = 1046.0
WARMUP_BATCHES = 5


def pooled_dice(predicted: np.ndarray, truth: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class 2·|P∩T| and |P|+|T| (foreground classes only) of class-index maps, to pool over batches."""
    overlap, sizes = np.zeros(classes), np.zeros(classes)
    for c in range(1, classes):
        overlap[c] = 2 * ((predicted == c) & (truth == c)).sum()
        sizes[c] = (predicted == c).sum() + (truth == c).sum()
    return overlap, sizes


def run_eeap(config: Path, overrides: list[str], seed: int) -> dict:
    """Train EEAP once; training images/s, test Dice of the last weights, and the data (for the baseline)."""
    import torch
    from lightning.pytorch.callbacks import Callback

    from eeap.config.loader import load_config
    from eeap.training.run import train

    class Meter(Callback):
        """Times training batches; scores the final weights on the test split."""

        def __init__(self) -> None:
            self.images, self.busy, self.batches, self.dice = 0, 0.0, 0, float("nan")

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            if module.device.type == "cuda":
                torch.cuda.synchronize()
            self.began = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            if module.device.type == "cuda":
                torch.cuda.synchronize()
            self.batches += 1
            if self.batches > WARMUP_BATCHES:
                self.busy += time.perf_counter() - self.began
                self.images += len(batch["masks"])

        def on_fit_end(self, trainer, module) -> None:
            self.data = trainer.datamodule
            classes = len(self.data.info().classes)
            overlap, sizes = np.zeros(classes), np.zeros(classes)
            module.eval()
            with torch.no_grad():
                for batch in self.data.test_dataloader():
                    logits, _, _ = module(batch["images"].to(module.device))
                    predicted = module.model.classes_of(logits).cpu().numpy()
                    o, s = pooled_dice(predicted, batch["masks"].numpy(), classes)
                    overlap, sizes = overlap + o, sizes + s
            self.dice = float(np.mean([overlap[c] / sizes[c] for c in range(1, classes) if sizes[c] > 0]))

    meter = Meter()
    cfg = load_config(
        config,
        [
            "logger=none",
            "test=false",
            "trainer.enable_progress_bar=false",
            "model.plot_examples=0",
            f"seed={seed}",
            f"run_dir={ROOT / 'runs' / 'bench' / f'segmentation-{time.time_ns()}'}",
            *overrides,
        ],
    )
    train(cfg, [meter])
    return {"images_per_s": meter.images / meter.busy, "dice": meter.dice, "cfg": cfg, "data": meter.data}


def run_monai(python: str, eeap: dict) -> dict:
    """MONAI's AttentionUnet on the splits EEAP trained on, with EEAP's epochs, batch, optimizer and schedule."""
    import torch

    cfg, data = eeap["cfg"], eeap["data"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        np.savez(
            path,
            classes=len(data.info().classes),
            **{f"{split}_images": np.stack([image for image, _ in data.splits[split]]) for split in ("train", "test")},
            **{f"{split}_masks": np.stack([mask for _, mask in data.splits[split]]) for split in ("train", "test")},
        )
        model, trainer, optim = cfg.model, cfg.trainer, cfg.model.optim
        gpu = trainer.accelerator in ("gpu", "cuda") or (trainer.accelerator == "auto" and torch.cuda.is_available())
        command = [
            python,
            str(ROOT / "bench" / "monai_baseline.py"),
            str(path),
            "--channels",
            *[str(c) for c in model.encode.channels],
            "--epochs",
            str(trainer.max_epochs),
            "--batch",
            str(cfg.data.batch_size),
            "--lr",
            str(optim.lr),
            "--weight-decay",
            str(optim.weight_decay),
            "--warmup-steps",
            str(optim.warmup_steps),
            "--warmup",
            str(WARMUP_BATCHES),
            "--device",
            "cuda" if gpu else "cpu",
            "--seed",
            str(cfg.seed),
        ]
        if "bf16" in str(trainer.precision):
            command.append("--bf16")
        if model.get("channels_last"):
            command.append("--channels-last")
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    baseline = json.loads(result.stdout.strip().splitlines()[-1])
    return {"images_per_s": baseline["images_per_s"], "dice": baseline["test_dice"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "segmentation" / "shapes.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--monai", metavar="PYTHON", help="a Python with MONAI installed, to run the baseline")
    parser.add_argument("--gates", action="store_true", help="also train without attention gates (model.attend=none)")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME='k=v ...'", help="a further EEAP variant to train"
    )
    parser.add_argument("--out", type=Path, help="write every run's figures to this JSON file")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    systems = {"EEAP": []}
    if args.monai:
        systems["MONAI AttentionUnet"] = []
    if args.gates:
        systems["EEAP, no gates"] = ["model.attend=none"]
    for variant in args.variant:
        name, _, overrides = variant.partition("=")
        systems[f"EEAP {name}"] = overrides.split()
    results: dict[str, list[dict]] = {name: [] for name in systems}
    print(f"config {args.config.name}, overrides {args.overrides}, seeds {args.seeds}; load {os.getloadavg()}")
    for seed in args.seeds:
        ours = None
        for name, extra in systems.items():
            if name.startswith("MONAI"):
                assert ours is not None
                figures = run_monai(args.monai, ours)
            else:
                figures = run_eeap(args.config, [*args.overrides, *extra], seed)
                ours = ours or figures
            row = {"seed": seed, "images_per_s": figures["images_per_s"], "dice": figures["dice"]}
            results[name].append(row)
            print(
                f"seed {seed}  {name:24s} {row['images_per_s']:7.1f} images/s  test Dice {row['dice']:.4f}", flush=True
            )

    print(f"\nsummary over seeds {args.seeds} (load {os.getloadavg()}):")
    print(f"{'system':26s} {'images/s min':>12s} {'median':>8s} {'Dice mean':>10s}  Dice per seed")
    for name, rows in results.items():
        rates, dice = [r["images_per_s"] for r in rows], [r["dice"] for r in rows]
        print(
            f"{name:26s} {min(rates):12.1f} {statistics.median(rates):8.1f} {statistics.mean(dice):10.4f}  "
            + " ".join(f"{d:.4f}" for d in dice)
        )
    if args.monai:
        ours, theirs = results["EEAP"], results["MONAI AttentionUnet"]
        speed = statistics.median(a["images_per_s"] / b["images_per_s"] for a, b in zip(ours, theirs))
        gap = statistics.mean(r["dice"] for r in ours) - statistics.mean(r["dice"] for r in theirs)
        print(f"EEAP / MONAI: {speed:.2f}× images/s (median of per-seed ratios; target ≥ 1.0× on CPU), Dice {gap:+.4f}")
    if args.gates:
        gap = statistics.mean(r["dice"] for r in results["EEAP"]) - statistics.mean(
            r["dice"] for r in results["EEAP, no gates"]
        )
        print(f"attention gates vs none: Dice {gap:+.4f} (mean over seeds)")
    if args.out:
        args.out.write_text(json.dumps({"config": str(args.config), "overrides": args.overrides, **results}, indent=1))
    print(
        f"reference: MONAI on an H100 (bf16, channels_last, batch 32, 256²) did {MONAI_GPU_IMAGES_PER_S:,.0f} "
        f"images/s; target ≥ {1.3 * MONAI_GPU_IMAGES_PER_S:,.0f}"
    )


if __name__ == "__main__":
    main()
