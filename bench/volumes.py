"""3D Attention U-Net on volumes: training patches/s, peak memory, per-volume Dice and HD95, against MONAI's
``AttentionUnet(spatial_dims=3)`` and against EEAP without gates, on the same data in the same loop.

    python bench/volumes.py [--config configs/segmentation/volumes.yaml] [--seeds 0 1 2] [--systems ...]
        [-- key=value overrides]

Each run is its own process (its peak resident memory is its own), back to back per seed (A/B/C, A/B/C, ...).
Every system trains through EEAP's training loop on the same prepared volumes, the same patches in the same order
(the data's seeded generator), with the same loss (Dice + cross-entropy), optimizer, schedule and epochs, and is
scored the same way after the last epoch (no best-checkpoint choice): MONAI's Gaussian sliding window over each test
volume, per-volume Dice and HD95 in mm averaged over volumes. Only the network differs: for ``monai`` a callback puts
MONAI 1.6's ``AttentionUnet(spatial_dims=3, channels=model.encode.channels, strides=2...)`` in place of EEAP's
encoder and decoder before the optimizer is made. The summary gives patches/s (training batches only, after 5
warm-up batches; min and median over seeds), peak memory (RSS on the CPU, allocated on a GPU), and mean Dice and HD95
over seeds, with the machine's load.

On a GPU (bf16, channels_last_3d, as the issue asks; the H200 command, untried here):

    python bench/volumes.py --seeds 0 1 2 -- trainer.accelerator=gpu trainer.precision=bf16-mixed \\
        model.channels_last=true data.patch_size=[96,96,96] data.batch_size=2 model.encode.channels=[16,32,64,128,256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARMUP_BATCHES = 5
SYSTEMS = {"eeap": [], "monai": [], "eeap-no-gates": ["model.attend=none"]}


def run_one(config: Path, overrides: list[str], seed: int, system: str) -> dict:
    """Train one system once in this process; its figures as a dict."""
    import torch
    from lightning.pytorch.callbacks import Callback
    from torch import nn

    from eeap.config.loader import load_config
    from eeap.training.run import train

    class MonaiNetwork(nn.Module):
        """MONAI's AttentionUnet where the task expects its decoder: (logits, no gate maps, no aux logits)."""

        def __init__(self, task: nn.Module, channels: list[int]) -> None:
            super().__init__()
            from monai.networks.nets import AttentionUnet

            info = task.info
            self.net = AttentionUnet(
                spatial_dims=3,
                in_channels=info.channels,
                out_channels=1 if info.binary else len(info.classes),
                channels=channels,
                strides=[2] * (len(channels) - 1),
            )

        def forward(self, features: list, size: tuple) -> tuple:
            return self.net(features[0]), [], []

    class Images(nn.Module):
        """An encoder that hands the images on, with the coarsest stride MONAI's network needs."""

        def __init__(self, levels: int) -> None:
            super().__init__()
            self.size_divisibility = 2 ** (levels - 1)

        def forward(self, images: torch.Tensor) -> list:
            return [images]

    class Meter(Callback):
        def __init__(self) -> None:
            self.patches, self.busy, self.batches = 0, 0.0, 0

        def setup(self, trainer, module, stage) -> None:
            if system == "monai" and not isinstance(module.model.decoder, MonaiNetwork):
                channels = list(cfg.model.encode.channels)
                module.model.encoder = Images(len(channels))
                # MONAI's initial weights from the run's seed alone, not from wherever building EEAP's model (which
                # it replaces) left the random stream: EEAP's decoder settings must not change MONAI's start.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module.model.decoder = MonaiNetwork(module.model, channels)

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
                self.patches += len(batch["masks"])

        def on_fit_end(self, trainer, module) -> None:
            task, data = module.model, trainer.datamodule
            metrics = task.new_metrics()
            task.eval()
            with torch.no_grad():
                for batch in data.test_dataloader():
                    batch = {k: v.to(module.device) for k, v in batch.items()}
                    task.evaluate(batch, "test", metrics)
            self.scores = {name: float(metric.compute()) for name, metric in metrics.items()}
            self.parameters = sum(p.numel() for p in task.parameters())

    cfg = load_config(
        config,
        [
            "logger=none",
            "test=false",
            "trainer.enable_progress_bar=false",
            "model.plot_examples=0",
            "early_stopping.stopping_threshold=null",
            f"seed={seed}",
            f"run_dir={ROOT / 'runs' / 'bench' / f'volumes-{system}-{time.time_ns()}'}",
            *overrides,
            *SYSTEMS[system],
        ],
    )
    meter = Meter()
    train(cfg, [meter])
    gpu = torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0
    peak = torch.cuda.max_memory_allocated() if gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "system": system,
        "seed": seed,
        "patches_per_s": meter.patches / meter.busy,
        "peak_mib": peak / 2**20,
        "peak_kind": "GPU allocated" if gpu else "RSS",
        "parameters": meter.parameters,
        **meter.scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "segmentation" / "volumes.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--systems", nargs="+", choices=tuple(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--one", choices=tuple(SYSTEMS), help=argparse.SUPPRESS)  # a child run
    parser.add_argument("--out", type=Path, help="write every run's figures to this JSON file")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.config, args.overrides, args.seeds[0], args.one)))
        return

    print(f"config {args.config.name}, overrides {args.overrides}, seeds {args.seeds}; load {os.getloadavg()}")
    subprocess.run(  # the volumes prepared once, before any run is timed
        [sys.executable, "-m", "eeap", "prepare", str(args.config), *args.overrides], check=True, capture_output=True
    )
    rows: dict[str, list[dict]] = {name: [] for name in args.systems}
    for seed in args.seeds:
        for system in args.systems:
            command = [sys.executable, __file__, "--one", system, "--config", str(args.config), "--seeds", str(seed)]
            result = subprocess.run([*command, "--", *args.overrides], capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"{system} seed {seed} failed:\n{result.stderr[-3000:]}")
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows[system].append(row)
            print(
                f"seed {seed}  {system:14s} {row['patches_per_s']:6.2f} patches/s  peak {row['peak_mib']:7.0f} MiB "
                f"({row['peak_kind']})  Dice {row['dice']:.4f}  HD95 {row['hd95']:.2f} mm  "
                f"{row['parameters']:,} parameters",
                flush=True,
            )
    print(f"\nsummary over seeds {args.seeds} (load {os.getloadavg()}):")
    print(
        f"{'system':16s} {'patches/s min':>13s} {'median':>7s} {'peak MiB':>9s} {'Dice':>7s} {'HD95 mm':>8s}  Dice per seed"
    )
    for system, runs in rows.items():
        rates = [r["patches_per_s"] for r in runs]
        print(
            f"{system:16s} {min(rates):13.2f} {statistics.median(rates):7.2f} "
            f"{max(r['peak_mib'] for r in runs):9.0f} {statistics.mean(r['dice'] for r in runs):7.4f} "
            f"{statistics.mean(r['hd95'] for r in runs):8.2f}  " + " ".join(f"{r['dice']:.4f}" for r in runs)
        )
    if "eeap" in rows and "monai" in rows:
        speed = statistics.median(a["patches_per_s"] / b["patches_per_s"] for a, b in zip(rows["eeap"], rows["monai"]))
        gap = statistics.mean(r["dice"] for r in rows["eeap"]) - statistics.mean(r["dice"] for r in rows["monai"])
        print(f"EEAP / MONAI: {speed:.2f}× patches/s (median of per-seed ratios; target ≥ 1.0×), Dice {gap:+.4f}")
    if "eeap" in rows and "eeap-no-gates" in rows:
        gap = statistics.mean(r["dice"] for r in rows["eeap"]) - statistics.mean(
            r["dice"] for r in rows["eeap-no-gates"]
        )
        print(f"attention gates vs none: Dice {gap:+.4f} (mean over seeds)")
    if args.out:
        args.out.write_text(json.dumps({"config": str(args.config), "overrides": args.overrides, **rows}, indent=1))


if __name__ == "__main__":
    main()
