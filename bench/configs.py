"""Every shipped config trained as shipped over several seeds: the figures the README and docs/tasks/*.md quote.

    python bench/configs.py [--seeds 0 1 2] [--only translation/dates classification ...] [--jobs 2]
        [--out bench/results/configs.jsonl] [--report] [key=value overrides for every run]

Each (config, seed) is one ``eeap train CONFIG seed=S`` in its own process (CSV logging only, a fresh run folder),
``--jobs`` of them at a time, each on ``cores / jobs`` threads. Its test metrics come from the run's metrics.json;
the date configs are also run (``eeap predict``) on the hand-typed dates of ``tests/data/human_dates.tsv``. Every
finished run is appended to ``--out`` as one JSON line at once, so a run cut short keeps what it finished, and
``--report`` prints the Markdown tables (mean ± sample standard deviation over seeds, each seed's value, training
time, epochs) from that file alone, with the date, the machine and its load.

The configs written for the user's own data (``parallel``, ``text_file``, ``folder``, ``caption_folder``) are
trained on stand-ins written to a folder in the formats they read: po_de.yaml's corpus as CSV files (``parallel``),
langid's Django translations as a CSV (``text_file``), shapes as PNG images and 0/255 masks (``folder``), and the
generated scenes as ``images/`` and ``captions.tsv`` (``caption_folder``, at 64 × 64 pixels instead of 224). The
stand-ins that hold out a test split themselves are given ``data.split_seed=0``, so every seed is scored on the same
examples and the spread is the model's.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HUMAN_DATES = ROOT / "tests" / "data" / "human_dates.tsv"

# the figures each task's table shows, in order: (metrics.json key, column title, scale)
HEADLINES: dict[str, list[tuple[str, str, float]]] = {
    "translation": [("test/exact_match", "exact match %", 100), ("test/bleu", "BLEU", 100), ("test/chrf", "chrF", 100)],
    "classification": [("test/accuracy", "accuracy %", 100), ("test/f1", "macro-F1", 1)],
    "segmentation": [("test/dice", "Dice", 1), ("test/iou", "IoU", 1), ("test/hd95", "HD95 mm", 1)],
    "captioning": [
        ("test/bleu_4", "BLEU-4", 1),
        ("test/meteor", "METEOR", 1),
        ("test/cider", "CIDEr-D", 1),
        ("test/exact_match", "exact match %", 100),
    ],
}


def write_text_file(folder: Path) -> list[str]:
    """langid's texts (Django's translations, labelled by language) as ``text,label`` rows of a CSV."""
    from tasks.classification.data import PoLanguageData

    splits, info = PoLanguageData(seed=0, tokenizer="word").make_splits()
    path = folder / "texts.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        for examples in splits.values():
            rows.writerows((e["text"], info.classes[e["label"]]) for e in examples)
    return [f"data.path={path}", "data.split_seed=0"]


def write_folder(folder: Path) -> list[str]:
    """1,100 binary shapes images (64 × 64) as ``images/*.png`` and ``masks/*.png`` (0 / 255)."""
    import numpy as np
    from PIL import Image

    from tasks.segmentation.data import make_shapes

    root = folder / "segmentation"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (image, mask) in enumerate(make_shapes(1100, 64, ["circle", "rectangle", "triangle"], True, 3, 0.05, 0)):
        Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(
            root / "images" / f"{i:05d}.png"
        )
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"{i:05d}.png")
    return [f"data.root={root}", "data.split_seed=0"]


def write_caption_folder(folder: Path) -> list[str]:
    """karpathy.yaml's generated scenes (2,600 images, five captions each) as ``images/`` and ``captions.tsv``."""
    from tasks.captioning.scenes import write_scenes

    scenes = folder / "scenes"
    write_scenes(scenes, {"train": 2000, "val": 200, "test": 400}, 64, seed=0)
    root = folder / "captions"
    (root / "images").mkdir(parents=True)
    index = json.loads(next(scenes.glob("dataset_*.json")).read_text())
    lines = []
    for entry in index["images"]:
        (root / "images" / entry["filename"]).symlink_to(scenes / "images" / entry["filename"])
        lines += [f"{entry['filename']}\t{s['raw']}" for s in entry["sentences"]]
    (root / "captions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [f"data.root={root}", "data.image_size=[64,64]", "data.split_seed=0"]


def write_parallel(folder: Path) -> list[str]:
    """po_de.yaml's corpus (the gettext catalogs of Django, Wagtail, django-allauth and Sphinx, split by app with
    split seed 0) as ``train.csv``, ``val.csv`` and ``test.csv`` (source, target; CSV, since strings span lines)."""
    from eeap.config.registry import DATA

    section = {"type": "gettext", "packages": ["django", "wagtail", "allauth", "sphinx"], "language": "de"}
    split = DATA.build({**section, "val_fraction": 0.1, "test_fraction": 0.1}, "data", seed=0).corpus()
    overrides = []
    for name, pairs in split.splits.items():
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(pairs)
        overrides.append(f"data.{name}={folder / f'{name}.csv'}")
    return overrides


STAND_INS: dict[str, Callable[[Path], list[str]]] = {
    "classification/text_file": write_text_file,
    "segmentation/folder": write_folder,
    "captioning/caption_folder": write_caption_folder,
    "translation/parallel": write_parallel,
}


def machine() -> str:
    """The CPU's model and cores, the GPU if there is one, and torch's version."""
    import torch

    model = platform.processor() or "CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{model}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}"


def hand_typed(checkpoint: str, threads: int) -> tuple[int, int, list[str]]:
    """How many of the hand-typed dates the checkpoint gets right, of how many, and the wrong ones."""
    rows = [line.split("\t") for line in HUMAN_DATES.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp) / "dates.txt", Path(tmp) / "out.txt"
        source.write_text("".join(f"{s}\n" for s, _ in rows), encoding="utf-8")
        subprocess.run(
            [sys.executable, "-m", "eeap", "predict", checkpoint, "--input", str(source), "--output", str(output)],
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
        outputs = output.read_text(encoding="utf-8").splitlines()
    wrong = [f"{s} → {o}" for (s, t), o in zip(rows, outputs) if o.strip() != t.strip()]
    return len(rows) - len(wrong), len(rows), wrong


def train_one(config: str, seed: int, extra: list[str], folder: Path, threads: int) -> dict[str, Any]:
    """One training run in its own process; its metrics.json, or the error it ended with."""
    run_dir = folder / "runs" / f"{config.replace('/', '-')}-seed{seed}"
    command = [sys.executable, "-m", "eeap", "train", config, f"seed={seed}", f"run_dir={run_dir}"]
    command += ["logger.use=[csv]", f"threads={threads}", *extra]
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, cwd=ROOT
    )
    record: dict[str, Any] = {"config": config, "seed": seed, "overrides": extra, "wall_s": time.perf_counter() - start}
    if done.returncode != 0:
        record["error"] = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return record
    record["metrics"] = json.loads((run_dir / "metrics.json").read_text())
    if config.startswith("translation/dates"):
        right, total, wrong = hand_typed(record["metrics"]["tested_checkpoint"], threads)
        record["hand_typed"] = {"right": right, "total": total, "wrong": wrong}
    return record


def spread(values: list[float]) -> str:
    """``mean ± sd`` (sample standard deviation) of the values, or the value alone."""
    if len(values) == 1:
        return f"{values[0]:.3g}"
    digits = 1 if max(abs(v) for v in values) >= 10 else 3
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def report(records: list[dict[str, Any]]) -> str:
    """Markdown tables, one per task, from the runs' records (the last record of each config and seed counts)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        latest[(record["config"], record["seed"])] = record
    usual = statistics.mode(r["machine"] for r in latest.values()) if latest else ""

    def elsewhere(runs: list[dict[str, Any]]) -> str:
        """`` on MACHINE`` for runs measured on another machine than most."""
        other = sorted({r["machine"] for r in runs} - {usual})
        return f" on {'; '.join(other)}" if other else ""

    lines = ["### every config", "", "| config | test figure, mean ± sd over seeds | seeds | training time, median |"]
    lines.append("| --- | --- | --- | --- |")
    for task, headlines in HEADLINES.items():
        for config in sorted({c for c, _ in latest if c.startswith(task + "/")}):
            good = [r for (c, _), r in sorted(latest.items()) if c == config and "metrics" in r]
            shown = next((h for h in headlines if any(h[0] in r["metrics"] for r in good)), None)
            if shown is None:
                continue
            key, title, scale = shown
            values = [r["metrics"][key] * scale for r in good if key in r["metrics"]]
            time_s = statistics.median(r["metrics"]["fit_time_s"] for r in good) / 60
            seeds = ", ".join(str(r["seed"]) for r in good)
            lines.append(f"| `{config}` | {title} {spread(values)} | {seeds} | {time_s:.1f} min{elsewhere(good)} |")
    lines.append("")
    for task, headlines in HEADLINES.items():
        configs = sorted({c for c, _ in latest if c.startswith(task + "/")})
        if not configs:
            continue
        hand = task == "translation"
        titles = ["config", "seeds", *(title for _, title, _ in headlines)]
        titles += ["hand-typed dates"] if hand else []
        titles += ["training time, median", "epochs"]
        lines += [f"### {task}", "", "| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
        for config in configs:
            runs = [r for (c, _), r in sorted(latest.items()) if c == config]
            good = [r for r in runs if "metrics" in r]
            cells = [f"`{config.split('/')[1]}`", ", ".join(str(r["seed"]) for r in good) or "-"]
            for key, _, scale in headlines:
                values = [r["metrics"][key] * scale for r in good if key in r["metrics"]]
                each = " / ".join(f"{v:.3g}" for v in values)
                cells.append(f"{spread(values)} ({each})" if len(values) > 1 else spread(values) if values else "")
            if hand:
                counts = [f"{r['hand_typed']['right']}/{r['hand_typed']['total']}" for r in good if "hand_typed" in r]
                cells.append(", ".join(counts))
            times = [r["metrics"]["fit_time_s"] / 60 for r in good]
            cells.append(f"{statistics.median(times):.1f} min{elsewhere(good)}" if times else "")
            cells.append(", ".join(str(r["metrics"]["epochs"]) for r in good))
            lines.append("| " + " | ".join(cells) + " |")
            lines += [
                f"| `{config.split('/')[1]}` seed {r['seed']} failed: {r['error']} |" for r in runs if "error" in r
            ]
        lines.append("")
    machines = sorted({r["machine"] for r in records})
    loads = [r["load"] for r in records]
    dates = sorted({r["date"] for r in records})
    jobs = sorted({f"{r['jobs']} runs at a time on {r['threads']} thread(s) each" for r in records})
    lines += [
        f"Measured {', '.join(dates)} on {'; '.join(machines)}; {'; '.join(jobs)}; "
        f"1-minute load {min(loads, default=0):.1f}–{max(loads, default=0):.1f} as runs ended."
    ]
    return "\n".join(lines)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The runs' records, one JSON object a line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    from eeap.config.loader import shipped_configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", default=[], help="configs (translation/dates) or tasks (translation)")
    parser.add_argument("--skip", nargs="+", default=[], help="configs or tasks to leave out")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "configs.jsonl")
    parser.add_argument("--report", action="store_true", help="print the tables from --out and exit")
    parser.add_argument("overrides", nargs="*", help="for every run, e.g. trainer.accelerator=gpu")
    args = parser.parse_intermixed_args()
    if args.report:
        print(report(read_records(args.out)))
        return

    def chosen(name: str, among: list[str]) -> bool:
        return any(name == x or name.startswith(x + "/") for x in among)

    configs = [c for c in shipped_configs() if c.split("/")[0] in HEADLINES]
    configs = [c for c in configs if (not args.only or chosen(c, args.only)) and not chosen(c, args.skip)]
    if args.only:  # in the order given
        configs.sort(key=lambda c: next(i for i, x in enumerate(args.only) if chosen(c, [x])))
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="eeap-configs-") as tmp:
        folder = Path(tmp)
        extras: dict[str, list[str]] = {}
        for config in configs:
            if config in STAND_INS:
                (folder / config.replace("/", "-")).mkdir()
                extras[config] = STAND_INS[config](folder / config.replace("/", "-"))

        def one(job: tuple[str, int]) -> None:
            config, seed = job
            record = train_one(config, seed, [*extras.get(config, []), *args.overrides], folder, threads)
            load = os.getloadavg()[0]  # as the run ends
            record.update(date=datetime.date.today().isoformat(), machine=machine(), load=load, threads=threads)
            record["jobs"] = args.jobs
            with lock:
                with args.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                shown: Optional[str] = record.get("error")
                if shown is None:
                    m = record["metrics"]
                    shown = ", ".join(f"{k}={m[k]:.4g}" for k, _, _ in HEADLINES[config.split("/")[0]] if k in m)
                print(f"{config} seed {seed}: {shown} ({record['wall_s'] / 60:.1f} min)", flush=True)

        jobs = [(config, seed) for config in configs for seed in args.seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, jobs))
    print(report(read_records(args.out)))


if __name__ == "__main__":
    main()
