"""Attention U-Net training speed and Dice, against MONAI's AttentionUnet with the same channel widths on the same data.

    python bench/segmentation.py [--monai /tmp/monai/bin/python] [key=value overrides of configs/segmentation/shapes.yaml]

EEAP trains ``configs/segmentation/shapes.yaml`` (with the overrides) and reports training images/s (training batches
only, after 5 warm-up batches) and test Dice. With ``--monai``, the same train and test splits are written to an .npz
and ``bench/monai_baseline.py`` trains MONAI's AttentionUnet on them in that interpreter's environment with the same
epochs, batch size, optimizer and schedule.

GPU reference (the issue: bf16, channels_last, batch 32, 256 × 256): MONAI's AttentionUnet did 1,046 images/s on an
H100. Target: at least 1.3× that, with equal or better Dice. On a GPU machine:

    python bench/segmentation.py --monai PY trainer.accelerator=gpu trainer.precision=bf16-mixed \\
        model.channels_last=true data.batch_size=32 data.image_size=256
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monai", metavar="PYTHON", help="a Python with MONAI installed, to run the baseline")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import torch
    from lightning.pytorch.callbacks import Callback

    from eeap.config import load_config
    from eeap.run import train

    class Meter(Callback):
        def __init__(self) -> None:
            self.images, self.busy, self.batches = 0, 0.0, 0

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

        def on_fit_start(self, trainer, module) -> None:
            self.data = trainer.datamodule

    meter = Meter()
    overrides = [
        "logger=none",
        "trainer.enable_progress_bar=false",
        "model.plot_examples=0",
        f"run_dir={ROOT / 'runs' / 'bench' / f'segmentation-{int(time.time())}'}",
        *args.overrides,
    ]
    cfg = load_config(ROOT / "configs" / "segmentation" / "shapes.yaml", overrides)
    metrics = train(cfg, [meter])
    ours = meter.images / meter.busy
    print(f"EEAP Attention U-Net: {ours:,.1f} training images/s, test Dice {metrics['test/dice']:.4f}")

    if args.monai:
        data = meter.data
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.npz"
            np.savez(
                path,
                classes=len(data.info().classes),
                **{
                    f"{split}_images": np.stack([image for image, _ in data.splits[split]])
                    for split in ("train", "test")
                },
                **{f"{split}_masks": np.stack([mask for _, mask in data.splits[split]]) for split in ("train", "test")},
            )
            model, trainer, optim = cfg.model, cfg.trainer, cfg.model.optim
            gpu = trainer.accelerator in ("gpu", "cuda") or (
                trainer.accelerator == "auto" and torch.cuda.is_available()
            )
            command = [
                args.monai,
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
        rate = baseline["images_per_s"]
        print(f"MONAI AttentionUnet: {rate:,.1f} training images/s, test Dice {baseline['test_dice']:.4f}")
        print(
            f"EEAP / MONAI: {ours / rate:.2f}× images/s (target ≥ 1.3×), Dice {metrics['test/dice']:.4f} vs "
            f"{baseline['test_dice']:.4f} (target: equal or better)"
        )
    print(
        f"reference: MONAI on an H100 (bf16, channels_last, batch 32, 256²) did {MONAI_GPU_IMAGES_PER_S:,.0f} "
        f"images/s; target ≥ {1.3 * MONAI_GPU_IMAGES_PER_S:,.0f}"
    )


if __name__ == "__main__":
    main()
