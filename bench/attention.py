"""Attention speed and memory: naive (explicit L×L scores) vs EEAP's multi-head core vs raw SDPA.

Times forward + backward (median) and records peak memory over sequence lengths, on CPU or GPU: on GPU the peak
allocated beyond the inputs, on CPU the growth of the process's peak resident memory after imports (each
measurement runs in a process of its own).
The issue's GPU target (bf16, B=8, H=16, d=64, L=8192): EEAP within 1.1× of raw SDPA's time and memory.

    python bench/attention.py                                   # CPU, float32, short lengths
    python bench/attention.py --device cuda --dtype bf16 --lengths 1024 2048 4096 8192 --batch 8 --heads 16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def naive(q, k, v, causal):
    """softmax(q kᵀ / √d) v with the full (L × L) score matrix."""
    import torch

    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (batch, heads, L, L)
    if causal:
        blocked = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(blocked, float("-inf"))
    return torch.softmax(scores, -1) @ v


def implementations():
    import torch.nn.functional as F

    from eeap.attend.multihead import attend_heads

    return {
        "naive": naive,
        "eeap": lambda q, k, v, causal: attend_heads(q, k, v, causal=causal)[0],
        "sdpa": lambda q, k, v, causal: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
    }


def measure(name: str, length: int, args: argparse.Namespace) -> dict:
    """Median fwd+bwd time (ms) and peak memory (MiB) of one implementation at one length."""
    import torch

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # after imports, before any tensor
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    shape = (args.batch, args.heads, length, args.head_dim)
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, device=args.device, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, device=args.device, dtype=dtype)
    fn = implementations()[name]
    cuda = args.device.startswith("cuda")

    def run():
        fn(q, k, v, args.causal).backward(grad)

    run()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(args.repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1000)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return {"impl": name, "length": length, "ms": sorted(times)[len(times) // 2], "peak_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one measurement, so CPU peak memory (max RSS) belongs to it alone
        print(json.dumps(measure(args.one[0], int(args.one[1]), args)))
        return
    print(f"{'length':>7} {'impl':>6} {'ms (fwd+bwd)':>13} {'peak MiB':>9} {'× sdpa time':>11} {'× sdpa mem':>10}")
    for length in args.lengths:
        rows = {}
        for name in ("sdpa", "eeap", "naive"):
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--one", name, str(length)], capture_output=True, text=True
            )
            if child.returncode != 0:
                print(f"{length:>7} {name:>6}  failed: {child.stderr.strip().splitlines()[-1]}")
                continue
            rows[name] = json.loads(child.stdout)
        for name, row in rows.items():
            ref = rows.get("sdpa")
            ratio_t = f"{row['ms'] / ref['ms']:.2f}" if ref else "-"
            ratio_m = f"{row['peak_mib'] / ref['peak_mib']:.2f}" if ref else "-"
            print(f"{length:>7} {name:>6} {row['ms']:>13.2f} {row['peak_mib']:>9.1f} {ratio_t:>11} {ratio_m:>10}")


if __name__ == "__main__":
    main()
