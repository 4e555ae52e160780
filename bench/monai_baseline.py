"""MONAI's AttentionUnet on data written by bench/segmentation.py; runs in a virtual environment of its own.

    python -m venv /tmp/monai && /tmp/monai/bin/pip install torch torchvision monai
    /tmp/monai/bin/python bench/monai_baseline.py DATA.npz --channels 16 32 64 128 --epochs 20 --batch 16

It imports nothing from EEAP. Training: MONAI's ``DiceCELoss`` (sigmoid for one class, softmax for more), AdamW with
EEAP's learning rate, weight decay and cosine schedule after linear warm-up, the same epochs and batch size; the data
order is shuffled each epoch, with random horizontal and vertical flips as EEAP's data does. Prints one JSON line:
training images/s (training batches only, after ``--warmup`` batches) and test Dice over the foreground classes.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch


def main() -> None:
    from monai.losses import DiceCELoss
    from monai.networks.nets import AttentionUnet

    parser = argparse.ArgumentParser()
    parser.add_argument("data", help=".npz with train_images, train_masks, test_images, test_masks, classes")
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=5, help="training batches left out of the images/s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    data = np.load(args.data)
    classes = int(data["classes"])
    binary = classes == 2
    device = torch.device(args.device)
    images = torch.as_tensor(data["train_images"])
    masks = torch.as_tensor(data["train_masks"])
    model = AttentionUnet(
        spatial_dims=2,
        in_channels=images.shape[1],
        out_channels=1 if binary else classes,
        channels=args.channels,
        strides=[2] * (len(args.channels) - 1),
    ).to(device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    loss_fn = DiceCELoss(sigmoid=binary, softmax=not binary, to_onehot_y=not binary)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(images) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(args.warmup_steps, 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(args.seed)
    seen, busy, step = 0, 0.0, 0
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), args.batch):
            index = order[start : start + args.batch]
            x, y = images[index].clone(), masks[index].clone()
            flips = torch.rand(len(index), 2, generator=generator) < 0.5
            for i, (horizontal, vertical) in enumerate(flips.tolist()):
                dims = [d for d, on in ((-1, horizontal), (-2, vertical)) if on]
                if dims:
                    x[i], y[i] = x[i].flip(dims), y[i].flip(dims)
            if device.type == "cuda":
                torch.cuda.synchronize()
            began = time.perf_counter()
            x = x.to(device).contiguous(memory_format=memory)
            y = y.to(device).unsqueeze(1).float()  # (batch, 1, H, W)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = loss_fn(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                busy += time.perf_counter() - began
                seen += len(index)
            step += 1
    model.eval()
    overlap = np.zeros(classes)
    sizes = np.zeros(classes)
    with torch.no_grad():
        test_images, test_masks = torch.as_tensor(data["test_images"]), torch.as_tensor(data["test_masks"])
        for start in range(0, len(test_images), 64):
            x = test_images[start : start + 64].to(device).contiguous(memory_format=memory)
            logits = model(x).float().cpu()
            predicted = (logits[:, 0] > 0).long() if binary else logits.argmax(1)
            truth = test_masks[start : start + 64]
            for c in range(1, classes):
                overlap[c] += 2 * ((predicted == c) & (truth == c)).sum().item()
                sizes[c] += (predicted == c).sum().item() + (truth == c).sum().item()
    dice = float(np.mean([overlap[c] / sizes[c] for c in range(1, classes) if sizes[c] > 0]))
    print(
        json.dumps(
            {"images_per_s": seen / busy, "test_dice": dice, "parameters": sum(p.numel() for p in model.parameters())}
        )
    )


if __name__ == "__main__":
    main()
