"""Decoding speed of the default date translator against JoeyNMT 2.3's, greedy and beam 5, as users run it.

    python bench/decode.py --joey-python /tmp/joey/bin/python [--rounds 2] [--workdir DIR]

Both systems translate the same 10,000 generated dates (the dates.yaml generator's test split, enlarged; none seen in
training) from one command each, 64 sentences a batch, writing to a file: ``predict.py CHECKPOINT --beam B`` and
``python -m joeynmt translate CONFIG`` (to standard output). Start-up (imports, loading the model) is the same command on a one-line input;
decoding time is the whole command's time minus that, and sentences/s is 10,000 over it. Commands run in turns,
A/B/A/B (EEAP greedy, JoeyNMT greedy, EEAP beam, JoeyNMT beam, then again), once with the environment as it is and
once with ``OMP_NUM_THREADS=1``; min and median per cell; the load average before and after.

The models are trained first (kept in ``--workdir`` for later runs): EEAP's with dates.yaml as shipped, JoeyNMT's
with bench/joeynmt_baseline.py's config of the same size (one epoch: only its speed matters here).
JoeyNMT runs from a virtual environment of its own (see bench/joeynmt_baseline.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SENTENCES = 10_000


def prepare(work: Path, joey_python: str) -> tuple[Path, Path]:
    """The input file and the EEAP checkpoint; JoeyNMT's model under work/joey (each made once)."""
    import joeynmt_baseline

    work.mkdir(parents=True, exist_ok=True)
    source = work / "dates.src"
    if not source.exists():
        _, splits = joeynmt_baseline.date_splits(SENTENCES)
        source.write_text("".join(s + "\n" for s, _ in splits[2]))
        (work / "one.src").write_text(splits[2][0][0] + "\n")
    checkpoint = work / "eeap" / "checkpoints" / "last.ckpt"
    if not checkpoint.exists():
        run(
            [
                sys.executable,
                "train.py",
                "configs/translation/dates.yaml",
                f"run_dir={work / 'eeap'}",
                "logger=none",
                "trainer.enable_progress_bar=false",
                "test=false",
            ]
        )
    joey = work / "joey"
    if not (joey / "model" / "best.ckpt").exists():
        joey.mkdir(exist_ok=True)
        joeynmt_baseline.write_data(joey)
        cfg = joeynmt_baseline.config(joey, epochs=1, validation_freq=300)
        (joey / "train.yaml").write_text(yaml.safe_dump(cfg))
        run([joey_python, "-m", "joeynmt", "train", str(joey / "train.yaml"), "--skip-test"])
    for beam in (1, 5):
        cfg = yaml.safe_load((joey / "train.yaml").read_text())
        cfg["testing"].update(beam_size=beam, batch_size=64, batch_type="sentence", n_best=1)
        cfg["testing"]["load_model"] = str(joey / "model" / "best.ckpt")
        (joey / f"translate_beam{beam}.yaml").write_text(yaml.safe_dump(cfg))
    return source, checkpoint


def run(command: list[str], stdin: Path | None = None, env: dict | None = None) -> float:
    """Run a command (quietly, from the repository); its wall time in seconds."""
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as given:
        result = subprocess.run(command, cwd=ROOT, stdin=given, capture_output=True, env=env)
    took = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr.decode()[-3000:]}")
    return took


def commands(system: str, beam: int, work: Path, checkpoint: Path, joey_python: str) -> list[str]:
    if system == "EEAP":
        out = work / f"eeap_beam{beam}.out"
        return [sys.executable, "predict.py", str(checkpoint), "--beam", str(beam), "--output", str(out)]
    config = work / "joey" / f"translate_beam{beam}.yaml"  # translations go to standard output (JoeyNMT 2.3's -o fails)
    return [joey_python, "-m", "joeynmt", "translate", str(config)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joey-python", required=True, help="the Python of a virtual environment with joeynmt==2.3.0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/eeap-decode-bench")
    args = parser.parse_args()
    work = Path(args.workdir)
    source, checkpoint = prepare(work, args.joey_python)
    print(f"load average before: {os.getloadavg()}")
    cells = [(system, beam) for beam in (1, 5) for system in ("EEAP", "JoeyNMT")]
    default = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    for setting, env in (("default threads", default), ("OMP_NUM_THREADS=1", {**default, "OMP_NUM_THREADS": "1"})):
        startup: dict[str, list[float]] = {"EEAP": [], "JoeyNMT": []}
        decoding: dict[tuple[str, int], list[float]] = {cell: [] for cell in cells}
        for _ in range(args.rounds):
            for system in ("EEAP", "JoeyNMT"):
                startup[system].append(
                    run(commands(system, 1, work, checkpoint, args.joey_python), work / "one.src", env)
                )
            for system, beam in cells:
                took = run(commands(system, beam, work, checkpoint, args.joey_python), source, env)
                decoding[(system, beam)].append(took - statistics.median(startup[system]))
        print(f"\n{setting} ({args.rounds} rounds, A/B/A/B)")
        for system in ("EEAP", "JoeyNMT"):
            print(
                f"  {system} start-up: min {min(startup[system]):.2f} s, median {statistics.median(startup[system]):.2f} s"
            )
        print(f"  {'':8} {'beam':>4} {'decoding s (min / median)':>26} {'sentences/s (median)':>21}")
        for system, beam in cells:
            times = decoding[(system, beam)]
            print(
                f"  {system:8} {beam:>4} {min(times):>12.2f} / {statistics.median(times):<11.2f} "
                f"{SENTENCES / statistics.median(times):>14,.0f}"
            )
        for system in ("EEAP", "JoeyNMT"):
            ratio = statistics.median(decoding[(system, 5)]) / statistics.median(decoding[(system, 1)])
            print(f"  {system} beam 5 / greedy decoding time: {ratio:.2f}×")
        speedup = statistics.median(decoding[("JoeyNMT", 5)]) / statistics.median(decoding[("EEAP", 5)])
        print(f"  EEAP beam-5 sentences/s over JoeyNMT's: {speedup:.2f}×")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
