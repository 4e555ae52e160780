"""JoeyNMT 2.3 on the same date data with the same model, for bench/translation.py's comparison.

JoeyNMT runs from its own virtual environment (it is no dependency of EEAP):

    python -m venv /tmp/joey && /tmp/joey/bin/pip install joeynmt==2.3.0 importlib_metadata
    python bench/joeynmt_baseline.py /tmp/joey/bin/python [--epochs 10]

It writes the train/dev/test splits of configs/translation/dates.yaml (same generator, seed and sizes) as JoeyNMT's
plain-text files, a JoeyNMT config with the same model (biGRU encoder, GRU decoder, Bahdanau attention, embeddings
64, hidden 128, batch 64 sentences, Adam 0.003, character level), trains (validating every quarter epoch, as
dates.yaml does, and plotting the attention of JoeyNMT's default three validation sentences each time, as EEAP plots
four), and reports JoeyNMT's own
"Tokens per Sec" (the mean over its log lines) and the wall time from its first log line to the first validation
with 100% sequence accuracy (exact match).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def date_splits(test_size: int | None = None) -> tuple[dict, list[list[tuple[str, str]]]]:
    """configs/translation/dates.yaml's data section and its train / dev / test pairs (same generator, seed and sizes;
    ``test_size`` overrides the test split's size)."""
    from omegaconf import OmegaConf

    import eeap  # noqa: F401
    from eeap.config.loader import load_config
    from eeap.tasks.translation.dates import DateGenerator

    cfg = OmegaConf.to_container(load_config(ROOT / "configs" / "translation" / "dates.yaml", ["logger=none"]))
    data = cfg["data"]
    generator = DateGenerator(cfg["seed"])
    train = generator.pairs(data["train_size"])
    seen = {s for s, _ in train}
    dev = generator.pairs(data["val_size"], exclude=seen)
    test = generator.pairs(test_size or data["test_size"], exclude=seen | {s for s, _ in dev})
    return data, [train, dev, test]


def write_data(folder: Path) -> int:
    """The date splits as <split>.src / <split>.trg; returns the steps per epoch (rounded up)."""
    data, splits = date_splits()
    for name, pairs in zip(("train", "dev", "test"), splits):
        (folder / f"{name}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (folder / f"{name}.trg").write_text("".join(t + "\n" for _, t in pairs))
    return -(-data["train_size"] // data["batch_size"])


def config(folder: Path, epochs: int, validation_freq: int) -> dict:
    side = {"level": "char", "lowercase": False, "max_length": 48, "voc_min_freq": 1}
    rnn = {
        "type": "recurrent",
        "rnn_type": "gru",
        "hidden_size": 128,
        "num_layers": 1,
        "dropout": 0.0,
        "embeddings": {"embedding_dim": 64},
    }
    return {
        "name": "dates_joeynmt",
        "data": {
            "train": str(folder / "train"),
            "dev": str(folder / "dev"),
            "test": str(folder / "test"),
            "dataset_type": "plain",
            "src": {"lang": "src", **side},
            "trg": {"lang": "trg", **side},
        },
        "testing": {"beam_size": 1, "eval_metrics": ["sequence_accuracy"], "max_output_length": 12},
        "training": {
            "random_seed": 0,
            "optimizer": "adam",
            "learning_rate": 0.003,
            "batch_size": 64,
            "batch_type": "sentence",
            "epochs": epochs,
            "validation_freq": validation_freq,
            "logging_freq": 50 if validation_freq % 50 == 0 else validation_freq,  # it must divide the above
            "early_stopping_metric": "loss",
            "clip_grad_norm": 1.0,
            "scheduling": "exponential",
            "decrease_factor": 1.0,  # a constant learning rate
            "model_dir": str(folder / "model"),
            "overwrite": True,
            "use_cuda": False,
        },
        "model": {
            "encoder": {**rnn, "bidirectional": True},
            "decoder": {**rnn, "attention": "bahdanau", "input_feeding": False, "init_hidden": "bridge"},
        },
    }


def stamp(line: str) -> datetime | None:
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d+)", line)
    return (
        datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(microsecond=int(match.group(2)) * 1000)
        if match
        else None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("python", help="the Python of a virtual environment with joeynmt==2.3.0")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--validation-freq", type=int, help="validate every this many steps (default: a quarter epoch, as dates.yaml)"
    )
    parser.add_argument("--log", help="also write JoeyNMT's log to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        steps = write_data(folder)
        freq = args.validation_freq or steps // 4
        (folder / "config.yaml").write_text(yaml.safe_dump(config(folder, args.epochs, freq)))
        run = subprocess.run(
            [args.python, "-m", "joeynmt", "train", str(folder / "config.yaml")], capture_output=True, text=True
        )
        log = run.stdout + run.stderr
        if run.returncode != 0:
            sys.exit(f"JoeyNMT failed:\n{log[-3000:]}")
    if args.log:
        Path(args.log).write_text(log)
    lines = log.splitlines()
    rates = [float(m.group(1)) for m in (re.search(r"Tokens per Sec:\s+([\d.]+)", x) for x in lines) if m]
    start = next(t for t in map(stamp, lines) if t)
    reached = None
    for line in lines:
        m = re.search(r"sequence_accuracy:\s+([\d.]+)", line)
        if m and float(m.group(1)) >= 100.0 and stamp(line) and "Evaluation result" in line:
            reached = (stamp(line) - start).total_seconds()
            break
    print(f"JoeyNMT training throughput: {sum(rates) / len(rates):,.0f} tokens/s (mean of {len(rates)} log lines)")
    print(f"JoeyNMT time to 100% validation sequence accuracy: {reached if reached is None else f'{reached:.1f} s'}")


if __name__ == "__main__":
    main()
