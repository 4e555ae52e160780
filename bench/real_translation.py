"""EEAP against JoeyNMT 2.3 on a real corpus, for the same wall time: configs/translation/po_de.yaml's gettext
catalogs (English → German user-interface strings of Django, Wagtail, django-allauth and Sphinx, split by app).

JoeyNMT runs from its own virtual environment (it is no dependency of EEAP; it calls sentencepiece's
``SetVocabulary``, which sentencepiece 0.2.1 and later no longer have):

    python -m venv /tmp/joey && /tmp/joey/bin/pip install torch==2.14.1 && \\
        /tmp/joey/bin/pip install joeynmt==2.3.0 importlib_metadata sentencepiece==0.2.0
    python bench/real_translation.py /tmp/joey/bin/python [--minutes 10] [--rounds 1] [key=value ...]

Both get the same things:
- **data**: the splits EEAP's ``gettext`` data makes (``GettextData.corpus``), written as JoeyNMT's plain text files;
- **tokenization**: the sentencepiece models EEAP fits (``eeap.data.text.fit_tokenizer``, the same inputs and settings),
  written to files for JoeyNMT with their pieces as its vocabularies; the bench checks that EEAP's run fitted the
  same models;
- **model**: the config's sizes mapped onto JoeyNMT's recurrent model (biGRU encoder, GRU decoder with Bahdanau
  attention queried by the new state, no input feeding, dropout on the source embeddings and before the output
  layer) or, for a Transformer config, onto JoeyNMT's Transformer; the same batch size, optimizer, learning rate,
  label smoothing, gradient clipping, validation once every ``trainer.check_val_every_n_epoch`` epochs (greedy
  BLEU; 1 unless overridden) and the best validation BLEU kept;
- **wall time**: ``--minutes`` of training from the first training step (EEAP: Lightning's ``max_time``, checked after
  each batch; JoeyNMT: stopped by this script at the same time, once no validation is under way, so neither loses
  the validation it is in). Tokenizer fitting and data loading come before the clock for both;
- **test**: each one's best checkpoint decodes the test sources with beam 5 and length penalty alpha 1 (GNMT's, in
  both); the bench scores both output files with the same sacrebleu call (BLEU and chrF, signatures printed).

Runs alternate (EEAP, JoeyNMT, EEAP, ... with ``--rounds``) on one quiet machine; report the load beside the figures.
Writes ``--out``/results.json and curve.png (validation BLEU over training wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load(config: str, overrides: list[str]) -> Any:
    from eeap.config.loader import load_config

    return load_config(config, ["logger=none", *overrides])


def write_data(cfg: Any, folder: Path) -> dict:
    """The config's splits as <split>.en / <split>.de and the sentencepiece models and vocabularies EEAP fits."""
    from omegaconf import OmegaConf

    from eeap.config.registry import DATA
    from eeap.data.base import DataModule
    from eeap.data.text import fit_tokenizer

    section = OmegaConf.to_container(cfg.data, resolve=True)
    data = DATA.build(section, where="data", role=DataModule, seed=cfg.seed)
    split = data.corpus()
    print(f"corpus: {split.summary()}")
    for name, pairs in split.splits.items():
        joey = "dev" if name == "val" else name
        (folder / f"{joey}.en").write_text("".join(s + "\n" for s, _ in pairs))
        (folder / f"{joey}.de").write_text("".join(t + "\n" for _, t in pairs))
    train = split.splits["train"]
    models = {}
    for side, texts in (("en", [s for s, _ in train]), ("de", [t for _, t in train])):
        tokenizer = fit_tokenizer("subword", texts, section["vocab_size"])
        (folder / f"{side}.model").write_bytes(tokenizer.model)
        specials = {"<pad>", "<unk>", "<s>", "</s>"}
        (folder / f"{side}.vocab").write_text("".join(p + "\n" for p in tokenizer.vocab if p not in specials))
        models[side] = tokenizer.model
    return {"sizes": {k: len(v) for k, v in split.splits.items()}, "models": models, "train": len(train)}


def joeynmt_config(cfg: Any, folder: Path, steps_per_epoch: int) -> dict:
    """The EEAP config's data, model and training settings in JoeyNMT 2.3's terms."""
    data, model = cfg.data, cfg.model
    validate_every = int(cfg.trainer.get("check_val_every_n_epoch", 1))

    def side(lang: str, max_length: int) -> dict:
        return {
            "lang": lang,
            "level": "bpe",
            "lowercase": False,
            "max_length": max_length,
            "voc_file": str(folder / f"{lang}.vocab"),
            "tokenizer_type": "sentencepiece",
            "tokenizer_cfg": {"model_file": str(folder / f"{lang}.model")},
        }

    if model.encode.type == "transformer":
        dim, enc, dec = model.embed.dim, model.encode, model.predict
        layer = {"type": "transformer", "hidden_size": dim}
        embeddings = {"embedding_dim": dim, "scale": True}
        net = {
            "encoder": {
                **layer,
                "num_layers": enc.layers,
                "num_heads": enc.heads,
                "ff_size": enc.ff_dim,
                "dropout": enc.dropout,
                "embeddings": {**embeddings, "dropout": model.embed.dropout},
                "layer_norm": "pre",
            },
            "decoder": {
                **layer,
                "num_layers": dec.layers,
                "num_heads": dec.heads,
                "ff_size": dec.ff_dim,
                "dropout": dec.dropout,
                "embeddings": {**embeddings, "dropout": dec.dropout},
                "layer_norm": "pre",
            },
            "tied_embeddings": False,
            "tied_softmax": bool(dec.get("tie_embeddings", True)),
        }
        optim = model.optim
        # EEAP's Noam peaks at lr after warmup_steps; JoeyNMT's at factor / sqrt(dim * warmup_steps)
        schedule = {
            "scheduling": "noam",
            "learning_rate_warmup": optim.warmup_steps,
            "learning_rate_factor": optim.lr * math.sqrt(dim * optim.warmup_steps),
            "adam_betas": list(optim.betas),
        }
    else:
        enc, dec = model.encode, model.predict
        rnn = {"type": "recurrent", "rnn_type": enc.cell, "num_layers": 1, "dropout": 0.0}
        net = {
            "encoder": {
                **rnn,
                "hidden_size": enc.hidden,
                "bidirectional": True,
                "embeddings": {"embedding_dim": model.embed.dim, "dropout": model.embed.dropout},
            },
            "decoder": {
                **rnn,
                "hidden_size": dec.hidden,
                "embeddings": {"embedding_dim": dec.embed_dim, "dropout": 0.0},
                "attention": "bahdanau",
                "input_feeding": bool(dec.input_feeding),
                "init_hidden": "bridge",
                "hidden_dropout": dec.dropout,
            },
        }
        schedule = {"scheduling": "exponential", "decrease_factor": 1.0}  # constant, as scheduler: none
    return {
        "name": f"{cfg.name}_joeynmt",
        "joeynmt_version": "2.3.0",
        "model_dir": str(folder / "joeynmt"),
        "use_cuda": False,
        "data": {
            "train": str(folder / "train"),
            "dev": str(folder / "dev"),
            "test": str(folder / "test"),
            "dataset_type": "plain",
            "src": side("en", data.max_src_len),
            "trg": side("de", data.max_tgt_len),
        },
        "testing": {
            "load_model": str(folder / "joeynmt" / "best.ckpt"),
            "beam_size": model.beam_size,
            "beam_alpha": model.length_penalty,
            "batch_size": 64,
            "batch_type": "sentence",
            "max_output_length": data.max_tgt_len,
            "eval_metrics": ["bleu", "chrf"],
            "sacrebleu_cfg": {"tokenize": "13a"},
        },
        "training": {
            "random_seed": cfg.seed,
            "optimizer": model.optim.name,
            "learning_rate": model.optim.lr,
            "batch_size": data.batch_size,
            "batch_type": "sentence",
            "normalization": "tokens",
            "label_smoothing": model.label_smoothing,
            "epochs": 10_000,  # stopped by the clock
            # EEAP's trainer.check_val_every_n_epoch, so an override validates both as rarely
            "validation_freq": steps_per_epoch * validate_every,
            "logging_freq": steps_per_epoch * validate_every,
            "early_stopping_metric": "bleu",
            "keep_best_ckpts": 1,
            "clip_grad_norm": cfg.trainer.gradient_clip_val,
            "shuffle": True,
            "overwrite": True,
            **schedule,
        },
        "model": {"initializer": "xavier_uniform", **net},
    }


def stamp(line: str) -> datetime | None:
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d+)", line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(microsecond=int(match.group(2)) * 1000)


def run_joeynmt(python: str, folder: Path, cfg: Any, budget: float, steps_per_epoch: int, threads: int = 0) -> dict:
    """Train JoeyNMT for ``budget`` seconds from its first training step, then decode the test split."""
    config = folder / "joeynmt.yaml"
    config.write_text(yaml.safe_dump(joeynmt_config(cfg, folder, steps_per_epoch)))
    log_file = folder / "joeynmt" / "train.log"
    process = subprocess.Popen(
        [python, "-m", "joeynmt", "train", str(config), "--skip-test"],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "joeynmt.stderr", "w"),  # noqa: SIM115
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None,
    )
    start, stopped = None, None
    while process.poll() is None:
        time.sleep(0.5)
        lines = log_file.read_text().splitlines() if log_file.exists() else []
        if start is None:
            first = next((stamp(x) for x in lines if "EPOCH 1" in x), None)
            if first is not None:
                start = time.monotonic() - (datetime.now() - first).total_seconds()
            continue
        if time.monotonic() - start >= budget and not validating(lines):
            stopped = time.monotonic() - start
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    if start is None:
        raise SystemExit(f"JoeyNMT failed before training:\n{(folder / 'joeynmt.stderr').read_text()[-3000:]}")
    lines = log_file.read_text().splitlines()
    epoch1 = next(stamp(x) for x in lines if "EPOCH 1" in x)
    assert epoch1 is not None
    curve, rates, steps = [], [], 0
    for line in lines:
        when = stamp(line)
        m = re.search(r"Evaluation result \(greedy\).*bleu:\s+([\d.]+)", line)
        if m and when:
            curve.append(((when - epoch1).total_seconds(), float(m.group(1)) / 100))
        m = re.search(r"Step:\s+(\d+).*Tokens per Sec:\s+([\d.]+)", line)
        if m:
            steps, rate = int(m.group(1)), float(m.group(2))
            rates.append(rate)
    trained = stopped or max(((stamp(x) or epoch1) - epoch1).total_seconds() for x in lines)
    hypotheses = folder / "joeynmt_hyp"
    begin = time.perf_counter()
    test = subprocess.run(
        [python, "-m", "joeynmt", "test", str(config), "--output-path", str(hypotheses)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None,
    )
    if test.returncode != 0:
        raise SystemExit(f"JoeyNMT test failed:\n{test.stderr[-3000:]}")
    return {
        "curve": curve,
        "tokens_per_s": sum(rates) / len(rates) if rates else math.nan,
        "steps": steps,
        "trained_s": trained,
        "test_decode_s": time.perf_counter() - begin,
        "hypotheses": (folder / "joeynmt_hyp.test").read_text().splitlines(),
    }


def validating(lines: list[str]) -> bool:
    """Whether JoeyNMT is validating: with logging_freq = validation_freq it logs a step line just before each
    validation, and the validation's last log lines are its examples (after its checkpoint is saved)."""
    last_step = max((i for i, x in enumerate(lines) if "Step:" in x), default=-1)
    last_example = max((i for i, x in enumerate(lines) if "Hypothesis:" in x), default=-1)
    return last_step > last_example


def run_eeap(cfg: Any, budget: float, run_dir: Path, models: dict) -> dict:
    """Train EEAP for ``budget`` seconds from its first training step (``trainer.max_time``) and decode the test
    split with the best checkpoint through ``eeap predict``."""
    import torch
    from lightning.pytorch.callbacks import Callback
    from omegaconf import OmegaConf

    from eeap.data.text import PAD
    from eeap.training.run import train

    class Meter(Callback):
        """Target tokens of the training batches over the time spent training them (validations left out, whether
        every epoch or every n-th validates), and validation BLEU over training wall time."""

        def __init__(self) -> None:
            self.tokens, self.busy, self.curve = 0, 0.0, []
            self.mark: float | None = None  # when the training under way began; None while validating

        def pause(self) -> None:
            if self.mark is not None:
                self.busy += time.perf_counter() - self.mark
                self.mark = None

        def on_train_start(self, trainer, module) -> None:
            self.start = time.perf_counter()

        def on_train_end(self, trainer, module) -> None:
            self.pause()  # a run stopped by max_time inside an epoch
            self.trained = time.perf_counter() - self.start

        def on_train_epoch_start(self, trainer, module) -> None:
            self.mark = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:
            self.pause()  # an epoch that did not validate

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.tokens += int((batch["tgt_out"] != PAD).sum())

        def on_validation_start(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                self.pause()

        def on_validation_end(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            self.mark = time.perf_counter()
            bleu = trainer.callback_metrics.get("val/bleu")
            if bleu is not None:
                self.curve.append((self.mark - self.start, float(bleu)))

    seconds = int(budget)
    limit = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    cfg = OmegaConf.merge(
        cfg,
        OmegaConf.create(
            {
                "run_dir": str(run_dir),
                "trainer": {"max_time": limit, "max_epochs": 10_000, "enable_progress_bar": False},
                "test": False,  # the test split is decoded below, as JoeyNMT's is
            }
        ),
    )
    meter = Meter()
    metrics = train(cfg, [meter])
    state = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=False)["eeap"]["data_state"]
    same = state["source"]["model"] == models["en"] and state["target"]["model"] == models["de"]
    hypotheses = run_dir / "hyp.de"
    begin = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eeap.cli",
            "predict",
            metrics["best_checkpoint"],
            "--input",
            str(run_dir.parent / "test.en"),
            "--output",
            str(hypotheses),
        ],
        check=True,
    )
    return {
        "curve": meter.curve,
        "tokens_per_s": meter.tokens / meter.busy,
        "steps": metrics["steps"],
        "trained_s": meter.trained,
        "test_decode_s": time.perf_counter() - begin,
        "hypotheses": hypotheses.read_text().splitlines(),
        "same_tokenizers": same,
    }


def score(hypotheses: list[str], references: list[str]) -> dict:
    import sacrebleu

    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for result in results:
        xs = [t / 60 for t, _ in result["curve"]]
        ys = [100 * b for _, b in result["curve"]]
        axes.plot(
            xs,
            ys,
            marker=".",
            color="C0" if result["system"] == "EEAP" else "C1",
            label=f"{result['system']} (round {result['round']})",
        )
    axes.set_xlabel("training wall time (min)")
    axes.set_ylabel("validation BLEU (greedy)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("python", help="the Python of a virtual environment with joeynmt==2.3.0")
    parser.add_argument("--config", default=str(ROOT / "configs" / "translation" / "po_de.yaml"))
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time for each system")
    parser.add_argument("--rounds", type=int, default=1, help="EEAP, JoeyNMT pairs, back to back")
    parser.add_argument("--systems", nargs="+", default=["EEAP", "JoeyNMT"], choices=["EEAP", "JoeyNMT"])
    parser.add_argument(
        "--joeynmt-threads", type=int, default=0, help="OMP_NUM_THREADS for JoeyNMT (default: torch's own choice)"
    )
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "real_translation"))
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = parser.parse_intermixed_args()  # options may sit between the Python and the overrides, as in the docstring
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    cfg = load(args.config, args.overrides)
    data = write_data(cfg, out)
    steps_per_epoch = -(-data["train"] // cfg.data.batch_size)
    references = (out / "test.de").read_text().splitlines()
    budget = args.minutes * 60
    print(f"load before: {os.getloadavg()[0]:.2f}; {args.minutes:g} min each; {data['sizes']}", flush=True)
    results = []
    for round_ in range(args.rounds):
        for system in args.systems:
            load_before = os.getloadavg()[0]
            if system == "EEAP":
                result = run_eeap(cfg, budget, out / f"eeap{round_}", data["models"])
            else:
                result = run_joeynmt(args.python, out, cfg, budget, steps_per_epoch, args.joeynmt_threads)
            result.update(score(result.pop("hypotheses"), references), system=system, round=round_)
            result["load"] = (load_before, os.getloadavg()[0])
            results.append(result)
            best = max((b for _, b in result["curve"]), default=math.nan)
            print(
                f"{system} round {round_}: test BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}; "
                f"best val BLEU {100 * best:.2f} of {len(result['curve'])} validations; "
                f"{result['steps']} steps in {result['trained_s']:.0f} s, {result['tokens_per_s']:,.0f} target "
                f"tokens/s; test decoding {result['test_decode_s']:.1f} s; load {result['load'][0]:.2f} → "
                f"{result['load'][1]:.2f}"
                + (f"; same tokenizers: {result['same_tokenizers']}" if "same_tokenizers" in result else ""),
                flush=True,
            )
            (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"BLEU: {results[0]['bleu_signature']}\nchrF: {results[0]['chrf_signature']}")
    for system in args.systems:
        mine = [r for r in results if r["system"] == system]
        bleu = ", ".join(f"{r['bleu']:.2f}" for r in mine)
        chrf = ", ".join(f"{r['chrf']:.2f}" for r in mine)
        rate = ", ".join(f"{r['tokens_per_s']:,.0f}" for r in mine)
        print(f"{system}: test BLEU {bleu}; chrF {chrf}; target tokens/s {rate}")
        curves = "; ".join(" ".join(f"{t:.0f}s:{100 * b:.1f}" for t, b in r["curve"]) for r in mine)
        print(f"  validation BLEU over training time: {curves}")
    plot(results, out / "curve.png")
    print(f"written: {out / 'results.json'}, {out / 'curve.png'}")


if __name__ == "__main__":
    main()
