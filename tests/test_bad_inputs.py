"""The bad-input corpus: each case is a command, the exit code it must give and words its one ``error:`` line (or, for
predict's per-line problems, its ``warning:`` line) must hold; never a traceback.

The cases run through ``eeap.cli.main`` in this process (a real process would add seconds each; tests/test_cli.py and
tests/test_faults.py run real ones), with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` set throughout, so that every
checkpoint load is shown to stay weights-only whatever the environment says.
"""

import copy
import io
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eeap.cli import main
from eeap.config.loader import load_config
from eeap.training.run import train
from tests.conftest import DATES, QUIET, ROOT, TINY_DATES

CONFIGS = ROOT / "configs"
PARALLEL = CONFIGS / "translation" / "parallel.yaml"
TEXTS = CONFIGS / "classification" / "text_file.yaml"
CAPTIONS = CONFIGS / "captioning" / "caption_folder.yaml"
FOLDER = CONFIGS / "segmentation" / "folder.yaml"
SHAPES = CONFIGS / "segmentation" / "shapes.yaml"
DIGITS = CONFIGS / "classification" / "digits.yaml"
VIT = CONFIGS / "classification" / "digits_vit.yaml"
FORMULAS = CONFIGS / "captioning" / "formulas.yaml"
TRANSFORMER = CONFIGS / "translation" / "dates_transformer.yaml"
SMALL_SHAPES = ["data.train_size=16", "data.val_size=4", "data.test_size=4", "data.image_size=32"]
SMALL_SHAPES += ["data.batch_size=4", "model.encode={type: unet_conv, channels: [8, 16, 32]}"]


class Payload:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def png(path, size=(32, 32), channels=3, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (*size, 3) if channels == 3 else size
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)
    return path


def captioned(root, extra=""):
    """A caption folder of four good 32×32 images, and ``extra`` caption lines."""
    for i in range(4):
        png(root / "images" / f"{i}.png")
    (root / "captions.tsv").write_text("".join(f"{i}.png\ta picture {i}\n" for i in range(4)) + extra)
    return root


def masked(root):
    """A segmentation folder of four good 32×32 images with their masks."""
    for i in range(4):
        png(root / "images" / f"{i}.png")
        png(root / "masks" / f"{i}.png", channels=1)
    return root


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """The workspace: bad files of every kind, and two small trained checkpoints."""
    w = tmp_path_factory.mktemp("corpus")
    (w / "afile").write_text("x")
    (w / "folder").mkdir()
    # seeded bytes, and a first byte no UTF-8 text starts with: line 1 is never valid text by chance
    (w / "random.bin").write_bytes(b"\xff" + random.Random(0).randbytes(2999))
    (w / "empty").write_bytes(b"")
    (w / "latin1.txt").write_bytes("Grüße\tgreetings\n".encode("latin-1"))
    # configs
    (w / "syntax.yaml").write_text("name: x\n  data: [\n")
    (w / "list.yaml").write_text("- a\n- b\n")
    (w / "latin1.yaml").write_bytes("name: grüße\n".encode("latin-1"))
    (w / "badkey.yaml").write_text(f"defaults: [{DATES}]\nfoo: 1\n")
    (w / "nodefault.yaml").write_text("defaults: [nothere.yaml]\nname: x\n")
    # translation files
    (w / "notab.tsv").write_text("".join(f"word{i} word{i}\n" for i in range(20)))
    lines = [f"w{i} x{i % 7}\tv{i}\n".encode() for i in range(60)]
    lines[40] = "grüße\tv\n".encode("latin-1")
    lines[50] = b"no tab here\n"
    (w / "twobad.tsv").write_bytes(b"".join(lines))
    (w / "pairs.tsv").write_text("".join(f"w{i} x{i % 7}\tv{i}\n" for i in range(80)))
    (w / "emptyfield.tsv").write_text("\tc\n" * 10)
    (w / "pairs.xyz").write_text("a\tb\n")
    (w / "bad.po").write_text('msgid "a\nmsgstr\n')
    (w / "src.txt").write_text("a\nb\nc\n")
    (w / "tgt2.txt").write_text("a\nb\n")
    # classification files
    (w / "onecol.csv").write_text("".join(f"text {i}\n" for i in range(20)))
    (w / "texts.csv").write_text("".join(f"some text {i},label{i % 2}\n" for i in range(40)))
    # captioning folders
    cap = w / "cap"
    for i in range(6):
        png(cap / "images" / f"{i}.png")
    (cap / "captions.tsv").write_text("".join(f"{i}.png\ta picture {i}\n" for i in range(6)))
    nocap = w / "nocap"
    png(nocap / "images" / "0.png")
    badcap = w / "badcap"
    png(badcap / "images" / "0.png")
    (badcap / "captions.tsv").write_bytes("0.png\tgrüße\n".encode("latin-1"))
    ghost = w / "ghost"
    captioned(ghost, "missing.png\tb\n")
    notab = w / "notabcap"
    png(notab / "images" / "0.png")
    (notab / "captions.tsv").write_text("0.png a caption\n")
    broken = w / "brokencap"
    captioned(broken, "x.png\tb\n")
    (broken / "images" / "x.png").write_text("not an image")
    sizes = w / "sizescap"
    captioned(sizes, "x.png\tb\n")
    png(sizes / "images" / "x.png", (16, 24))
    # segmentation folders
    seg = w / "seg"
    for i in range(4):
        png(seg / "images" / f"{i}.png")
        png(seg / "masks" / f"{i}.png", channels=1)
    nomasks = w / "nomasks"
    png(nomasks / "images" / "0.png")
    lonely = masked(w / "lonely")
    png(lonely / "images" / "x.png")
    wrongmask = masked(w / "wrongmask")
    png(wrongmask / "images" / "x.png")
    png(wrongmask / "masks" / "x.png", (16, 16), channels=1)
    badmask = masked(w / "badmask")
    png(badmask / "images" / "x.png")
    (badmask / "masks" / "x.png").write_text("not an image")
    badimage = masked(w / "badimage")
    (badimage / "images" / "x.png").write_text("not an image")
    png(badimage / "masks" / "x.png", channels=1)
    noimages = w / "noimages"
    (noimages / "images").mkdir(parents=True)
    (noimages / "masks").mkdir()
    # run folders
    (w / "norun").mkdir()
    taken = w / "taken" / "checkpoints"
    taken.mkdir(parents=True)
    (taken / "last.ckpt").write_bytes(b"good")
    # checkpoints
    run = train(load_config(DATES, [*TINY_DATES, "trainer.max_epochs=1", f"run_dir={w / 'dates'}"]))
    good = torch.load(run["best_checkpoint"], weights_only=True)
    (w / "dates.ckpt").write_bytes(Path(run["best_checkpoint"]).read_bytes())
    (w / "truncated.ckpt").write_bytes((w / "dates.ckpt").read_bytes()[:1000])
    torch.save({**good, "payload": Payload(str(w / "code-ran"))}, w / "crafted.ckpt")
    torch.save({"state_dict": good["state_dict"]}, w / "foreign.ckpt")
    torch.save({k: v for k, v in good.items() if k != "state_dict"}, w / "noweights.ckpt")
    resized = copy.deepcopy(good)
    resized["eeap"]["config"]["model"]["embed"]["dim"] = 8  # the config inside edited to other sizes
    torch.save(resized, w / "resized.ckpt")
    with open(w / "pickled.ckpt", "wb") as f:
        pickle.dump(Payload(str(w / "code-ran")), f)
    seg_run = train(
        load_config(SHAPES, [*QUIET, *SMALL_SHAPES, "trainer.max_epochs=1", "test=false", f"run_dir={w / 'shapes'}"])
    )
    (w / "seg.ckpt").write_bytes(Path(seg_run["best_checkpoint"]).read_bytes())
    # inputs for predict
    (w / "empty-line.txt").write_text("4 March 2021\n\n")
    (w / "long-line.txt").write_text("1" * 500 + "\n")
    (w / "nul-path.txt").write_bytes(b"a\x00b.png\n")
    (w / "missing-image.txt").write_text(f"{w / 'nothere.png'}\n")
    (w / "broken-image.txt").write_text(f"{broken / 'images' / 'x.png'}\n")
    (w / "latin1-lines.txt").write_bytes("3 März 2021\n".encode("latin-1"))
    return w


T = ["train", str(DATES), *TINY_DATES]  # the date translator, shrunk; most config cases start here
P = ["train", str(PARALLEL), *QUIET]
X = ["train", str(TEXTS), *QUIET]
C = ["train", str(CAPTIONS), *QUIET]
S = ["train", str(FOLDER), *QUIET]

CASES = [
    # ---- the command line --------------------------------------------------------------------------------------
    ("unknown-command", ["bogus"], 2, "unknown command 'bogus'. Valid commands: train, test, prepare, predict"),
    ("train-no-config", ["train"], 2, "eeap train: the following arguments are required: config"),
    ("train-unknown-option", ["train", str(DATES), "--bogus"], 2, "unrecognized arguments: --bogus"),
    ("test-no-checkpoint", ["test"], 2, "eeap test: the following arguments are required: checkpoint"),
    ("predict-no-checkpoint", ["predict"], 2, "eeap predict: the following arguments are required: checkpoint"),
    ("predict-beam-not-int", ["predict", "{w}/dates.ckpt", "--beam", "two"], 2, "invalid int value: 'two'"),
    ("predict-batch-not-int", ["predict", "{w}/dates.ckpt", "--batch-size", "x"], 2, "invalid int value: 'x'"),
    ("predict-beam-0", ["predict", "{w}/dates.ckpt", "--beam", "0"], 2, "--beam must be at least 1, got 0"),
    ("predict-beam-negative", ["predict", "{w}/dates.ckpt", "--beam", "-2"], 2, "--beam must be at least 1, got -2"),
    ("predict-batch-0", ["predict", "{w}/dates.ckpt", "--batch-size", "0"], 2, "--batch-size must be at least 1"),
    ("predict-unknown-option", ["predict", "{w}/dates.ckpt", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ("predict-option-no-value", ["predict", "{w}/dates.ckpt", "--output"], 2, "argument --output: expected one"),
    ("components-unknown-kind", ["components", "bogus"], 2, "unknown kind 'bogus'. Valid kinds: embed, encode"),
    ("components-unknown-name", ["components", "attend", "bogus"], 2, "unknown attend type 'bogus'. Valid options"),
    ("components-extra-argument", ["components", "attend", "additive", "x"], 2, "unrecognized arguments: x"),
    ("override-without-equals", [*T, "nokey"], 2, "nokey"),
    ("override-empty-key", [*T, "=3"], 2, "=3"),
    # ---- config files ------------------------------------------------------------------------------------------
    ("config-missing", ["train", "{w}/nothere.yaml"], 2, "config file not found: {w}/nothere.yaml"),
    ("config-is-a-folder", ["train", "{w}/folder"], 2, "config {w}/folder is a folder; give a YAML file"),
    ("config-random-bytes", ["train", "{w}/random.bin"], 2, "config: {w}/random.bin line 1 is not UTF-8 text"),
    ("config-yaml-syntax", ["train", "{w}/syntax.yaml"], 2, "{w}/syntax.yaml"),
    ("config-a-list", ["train", "{w}/list.yaml"], 2, "{w}/list.yaml"),
    ("config-not-utf8", ["train", "{w}/latin1.yaml"], 2, "config: {w}/latin1.yaml line 1 is not UTF-8 text"),
    ("config-empty", ["train", "{w}/empty"], 2, "{w}/empty: the file is empty"),
    ("config-missing-default", ["train", "{w}/nodefault.yaml"], 2, "nothere.yaml"),
    ("config-unknown-key-in-file", ["train", "{w}/badkey.yaml", *TINY_DATES], 2, "foo: unknown key"),
    # ---- unknown keys, at every level --------------------------------------------------------------------------
    ("key-top", [*T, "bogus=1"], 2, "bogus: unknown key"),
    ("key-trainer", [*T, "trainer.bogus=1"], 2, "trainer.bogus: unknown key"),
    ("key-logger", [*T, "logger.bogus=1"], 2, "logger.bogus: unknown key"),
    ("key-wandb", [*T, "logger.wandb.bogus=1"], 2, "logger.wandb.bogus: unknown key"),
    ("key-checkpoint", [*T, "checkpoint.bogus=1"], 2, "checkpoint.bogus: unknown key"),
    ("key-early-stopping", [*T, "early_stopping.bogus=1"], 2, "early_stopping.bogus: unknown key"),
    ("key-data", [*T, "data.bogus=1"], 2, "data.bogus: unknown key for data 'dates'"),
    ("key-model", [*T, "model.bogus=1"], 2, "model.bogus: unknown key for task 'translation'"),
    ("key-optim", [*T, "model.optim.bogus=1"], 2, "model.optim.bogus: unknown key"),
    ("key-embed", [*T, "model.embed.bogus=1"], 2, "model.embed.bogus: unknown key for embed 'token'"),
    ("key-encode", [*T, "model.encode.hiden=3"], 2, "model.encode.hiden: unknown key for encode 'rnn'"),
    ("key-attend", [*T, "model.attend.bogus=1"], 2, "model.attend.bogus: unknown key for attend 'additive'"),
    ("key-predict", [*T, "model.predict.bogus=1"], 2, "model.predict.bogus: unknown key for predict 'rnn_decoder'"),
    ("key-score", [*T, "model.attend={type: gated, score: {type: general, bogus: 1}}"], 2, "model.attend.score.bogus"),
    # ---- values of a wrong type or out of range ----------------------------------------------------------------
    ("seed-text", [*T, "seed=abc"], 2, "seed: expected int"),
    ("seed-float", [*T, "seed=1.5"], 2, "seed: expected int"),
    ("test-not-bool", [*T, "test=maybe"], 2, "test: expected"),
    ("kernels-unknown", [*T, "kernels=fast"], 2, "kernels: expected one of"),
    ("max-epochs-text", [*T, "trainer.max_epochs=abc"], 2, "trainer.max_epochs: expected"),
    ("max-epochs-float", [*T, "trainer.max_epochs=1.5"], 2, "trainer.max_epochs: expected"),
    ("precision-unknown", [*T, "trainer.precision=bogus"], 2, "trainer"),
    ("accelerator-tpu", [*T, "trainer.accelerator=tpu"], 2, "trainer: "),
    ("accelerator-unknown", [*T, "trainer.accelerator=bogus"], 2, "trainer"),
    ("devices-text", [*T, "trainer.devices=bogus"], 2, "trainer: `devices` selected with `CPUAccelerator`"),
    ("strategy-unknown", [*T, "trainer.strategy=bogus"], 2, "trainer"),
    ("max-time-format", [*T, "trainer.max_time=soon"], 2, "trainer.max_time: expected DD:HH:MM:SS"),
    ("clip-text", [*T, "trainer.gradient_clip_val=abc"], 2, "trainer.gradient_clip_val: expected"),
    ("log-every-text", [*T, "trainer.log_every_n_steps=abc"], 2, "trainer.log_every_n_steps: expected"),
    (
        "plateau-without-validation",
        [*T, "model.optim.scheduler=plateau", "trainer.limit_val_batches=0"],
        2,
        "model.optim.scheduler: plateau lowers the rate when the validation metric stalls, but",
    ),
    ("logger-unknown", [*T, "logger.use=[tensorbord]"], 2, "logger.use: unknown logger 'tensorbord'"),
    ("wandb-mode-unknown", [*T, "logger=default", "logger.wandb.mode=bogus"], 2, "logger.wandb.mode: expected one of"),
    ("save-top-k-text", [*T, "checkpoint.save_top_k=abc"], 2, "checkpoint.save_top_k: expected"),
    ("checkpoint-mode", [*T, "checkpoint.mode=up"], 2, "checkpoint.mode: expected one of"),
    ("checkpoint-monitor", [*T, "checkpoint.monitor=val/acc"], 2, "checkpoint.monitor: 'val/acc' is not a metric"),
    ("stopping-monitor", [*T, "early_stopping.monitor=val/f1"], 2, "early_stopping.monitor: 'val/f1' is not a metric"),
    ("patience-negative", [*T, "early_stopping.patience=-1"], 2, "early_stopping.patience: expected"),
    ("stopping-mode", [*T, "early_stopping.mode=up"], 2, "early_stopping.mode: expected one of"),
    ("batch-size-0", [*T, "data.batch_size=0"], 2, "data.batch_size: expected int ≥ 1"),
    ("batch-size-text", [*T, "data.batch_size=abc"], 2, "data.batch_size: expected int"),
    ("train-size-0", [*T, "data.train_size=0"], 2, "data.train_size: expected int ≥ 1"),
    ("val-size-negative", [*T, "data.val_size=-1"], 2, "data.val_size: expected int ≥ 1"),
    ("lr-negative", [*T, "model.optim.lr=-1"], 2, "model.optim.lr: expected float > 0"),
    ("lr-text", [*T, "model.optim.lr=abc"], 2, "model.optim.lr: expected float"),
    ("optimizer-unknown", [*T, "model.optim.name=rmsprop"], 2, "model.optim.name: expected one of"),
    ("scheduler-unknown", [*T, "model.optim.scheduler=bogus"], 2, "model.optim.scheduler: expected one of"),
    ("betas-one", [*T, "model.optim.betas=[0.9]"], 2, "model.optim.betas: expected a list of 2 values"),
    ("betas-range", [*T, "model.optim.betas=[0.9, 1.5]"], 2, "model.optim.betas"),
    ("weight-decay-negative", [*T, "model.optim.weight_decay=-0.1"], 2, "model.optim.weight_decay: expected float ≥ 0"),
    ("warmup-negative", [*T, "model.optim.warmup_steps=-5"], 2, "model.optim.warmup_steps: expected int ≥ 0"),
    ("label-smoothing", [*T, "model.label_smoothing=2.0"], 2, "model.label_smoothing: expected float in [0, 1]"),
    ("dropout-range", [*T, "model.encode.dropout=1.5"], 2, "model.encode.dropout: expected float in [0, 1)"),
    ("layers-0", [*T, "model.encode.layers=0"], 2, "model.encode.layers: expected int ≥ 1"),
    ("hidden-text", [*T, "model.encode.hidden=abc"], 2, "model.encode.hidden: expected int"),
    ("embed-dim-0", [*T, "model.embed.dim=0"], 2, "model.embed.dim: expected int ≥ 1"),
    ("cell-unknown", [*T, "model.encode.cell=gru2"], 2, "model.encode.cell: expected one of"),
    ("style-unknown", [*T, "model.predict.style=bogus"], 2, "model.predict.style: expected one of"),
    ("beam-0", [*T, "model.beam_size=0"], 2, "model.beam_size: expected int ≥ 1"),
    ("teacher-forcing-range", [*T, "model.predict.teacher_forcing=2"], 2, "model.predict.teacher_forcing: expected"),
    ("attend-a-string", [*T, "model.attend=bogus"], 2, "model.attend: expected a section like {type: additive}"),
    ("attend-dot-sizes", [*T, "model.attend.type=dot"], 2, "model.attend: 'dot' attention needs query and key"),
    ("heads-divide", [*T, "model.attend={type: multihead, num_heads: 3, dim: 64}"], 2, "not divisible by num_heads"),
    (
        "attend-none-needed",
        ["train", str(TRANSFORMER), *QUIET, *TINY_DATES[4:7], "model.attend=none"],
        2,
        "needs an attention",
    ),
    # ---- component names and roles -----------------------------------------------------------------------------
    ("data-type-unknown", [*T, "data.type=dats"], 2, "data.type: unknown data type 'dats'. Valid options:"),
    ("data-of-another-task", [*T, "data={type: digits}"], 2, "task 'translation' needs its own kind of data"),
    ("model-type-unknown", [*T, "model.type=bogus"], 2, "model.type: unknown task type 'bogus'"),
    ("task-of-other-data", [*T, "model.type=classification"], 2, "data 'dates' is for another task"),
    ("embed-type-unknown", [*T, "model.embed.type=bogus"], 2, "model.embed.type: unknown embed type 'bogus'"),
    ("encode-type-unknown", [*T, "model.encode.type=bogus"], 2, "model.encode.type: unknown encode type 'bogus'"),
    ("attend-type-unknown", [*T, "model.attend.type=addtive"], 2, "model.attend.type: unknown attend type 'addtive'"),
    ("predict-type-unknown", [*T, "model.predict.type=bogus"], 2, "model.predict.type: unknown predict type 'bogus'"),
    ("attend-a-skip-gate", [*T, "model.attend.type=attention_gate"], 2, "'attention_gate' is a"),
    ("predict-a-classifier", [*T, "model.predict={type: classifier}"], 2, "'classifier' is a"),
    ("embed-an-image-embedder", [*T, "model.embed={type: cnn}"], 2, "'cnn' is a"),
    ("encode-a-pyramid", [*T, "model.encode={type: unet_conv}"], 2, "'unet_conv' is a"),
    ("score-unknown", [*T, "model.attend={type: gated, score: {type: bogus}}"], 2, "model.attend.score.type: unknown"),
    ("score-not-a-score", [*T, "model.attend={type: gated, score: {type: local}}"], 2, "model.attend.score"),
    (
        "additive-as-a-gate",
        ["train", str(SHAPES), *QUIET, *SMALL_SHAPES, "model.attend.type=additive"],
        2,
        "'additive' is a",
    ),
    # ---- image sizes against the network -----------------------------------------------------------------------
    ("cnn-too-deep", ["train", str(DIGITS), *QUIET, "model.embed.channels=[8,8,8,8,8]"], 2, "too small for 5 blocks"),
    ("patch-not-dividing", ["train", str(VIT), *QUIET, "model.embed.patch_size=3"], 2, "patch_size 3 does not divide"),
    (
        "grid-stride",
        [
            "train",
            str(FORMULAS),
            *QUIET,
            "data.image_size=[40,128]",
            "data.train_size=8",
            "data.val_size=4",
            "data.test_size=4",
            "model.embed={type: image_grid, encoder: {type: smp, name: resnet18, depth: 5, weights: null}}",
        ],
        2,
        "do not divide",
    ),
    ("segmentation-tiny-images", ["train", str(SHAPES), *QUIET, "data.image_size=4"], 2, "data.image_size: at least"),
    # ---- resuming ----------------------------------------------------------------------------------------------
    ("resume-missing", [*T, "resume={w}/nothere.ckpt"], 2, "resume={w}/nothere.ckpt: checkpoint not found"),
    ("resume-last-none", [*T, "name=never-trained", "resume=last"], 2, "resume=last: no runs/never-trained/"),
    ("resume-folder-without", [*T, "resume={w}/norun"], 2, "checkpoint not found ({w}/norun/checkpoints/last.ckpt)"),
    ("resume-truncated", [*T, "resume={w}/truncated.ckpt"], 2, "not a readable checkpoint"),
    ("resume-random-bytes", [*T, "resume={w}/random.bin"], 2, "not a readable checkpoint"),
    ("resume-empty-file", [*T, "resume={w}/empty"], 2, "not a readable checkpoint"),
    ("resume-crafted", [*T, "resume={w}/crafted.ckpt"], 2, "not a readable checkpoint (UnpicklingError)"),
    ("resume-pickle", [*T, "resume={w}/pickled.ckpt"], 2, "not a readable checkpoint"),
    ("resume-foreign", [*T, "resume={w}/foreign.ckpt"], 2, "not a checkpoint written by eeap train"),
    ("resume-other-sizes", [*T, "resume={w}/dates.ckpt", "model.embed.dim=8"], 2, "holds another model"),
    ("resume-other-task", [*T, "resume={w}/seg.ckpt"], 2, "holds another model"),
    ("resume-a-yaml", [*T, "resume={w}/badkey.yaml"], 2, "not a readable checkpoint"),
    # ---- run folders -------------------------------------------------------------------------------------------
    ("run-dir-below-file", [*T, "run_dir={w}/afile/run"], 2, "{w}/afile is a file, not a folder"),
    ("run-dir-is-file", [*T, "run_dir={w}/afile"], 2, "run_dir {w}/afile: a file is in the way"),
    ("run-dir-read-only", [*T, "run_dir=/sys/eeap-run"], 2, "cannot write in /sys (Operation not permitted)"),
    ("run-dir-taken", [*T, "run_dir={w}/taken"], 2, "already holds checkpoints; continue it with resume="),
    # ---- translation data files --------------------------------------------------------------------------------
    ("parallel-missing", [*P, "data.train={w}/nothere.tsv"], 2, "data.train: file not found: {w}/nothere.tsv"),
    ("parallel-folder", [*P, "data.train={w}/folder"], 2, "{w}/folder"),
    ("parallel-not-utf8", [*P, "data.train={w}/latin1.txt"], 2, "is not UTF-8 text (bytes b'\\xfc')"),
    ("parallel-empty", [*P, "data.train={w}/empty"], 2, "{w}/empty"),
    ("parallel-no-tab", [*P, "data.train={w}/notab.tsv"], 2, "{w}/notab.tsv"),
    ("parallel-bad-line-41", [*P, "data.train={w}/twobad.tsv"], 2, "{w}/twobad.tsv line 41 is not UTF-8 text"),
    (
        "parallel-skip-bad-lines",  # skipped: training goes on; the two lines are reported, not refused
        [*P, "data.train={w}/twobad.tsv", "data.on_bad_line=skip", "data.on_bad_line=maybe"],
        2,
        "data.on_bad_line: expected one of 'error', 'skip'",
    ),
    (
        "parallel-empty-field",
        [*P, "data.train={w}/emptyfield.tsv"],
        2,
        "train pairs has an empty side; nothing to train on",
    ),
    ("parallel-suffix", [*P, "data.train={w}/pairs.xyz"], 2, "{w}/pairs.xyz"),
    ("parallel-bad-po", [*P, "data.train={w}/bad.po"], 2, "{w}/bad.po"),
    ("parallel-target-missing", [*P, "data.train={source: {w}/src.txt, target: {w}/nothere.txt}"], 2, "nothere.txt"),
    ("parallel-line-counts", [*P, "data.train={source: {w}/src.txt, target: {w}/tgt2.txt}"], 2, "tgt2.txt"),
    ("parallel-val-missing", [*P, "data.train={w}/pairs.tsv", "data.val={w}/nothere.tsv"], 2, "data.val: file not"),
    ("parallel-tokenizer", [*P, "data.train={w}/pairs.tsv", "data.src_tokenizer=bogus"], 2, "data.src_tokenizer"),
    ("parallel-vocab-0", [*P, "data.train={w}/pairs.tsv", "data.vocab_size=0"], 2, "data.vocab_size"),
    # ---- text classification files -----------------------------------------------------------------------------
    ("texts-missing", [*X, "data.path={w}/nothere.csv"], 2, "nothere.csv"),
    ("texts-not-utf8", [*X, "data.path={w}/latin1.txt"], 2, "is not UTF-8 text"),
    ("texts-empty", [*X, "data.path={w}/empty"], 2, "data.path: {w}/empty holds no rows"),
    ("texts-one-column", [*X, "data.path={w}/onecol.csv"], 2, "{w}/onecol.csv"),
    ("texts-label-column", [*X, "data.path={w}/texts.csv", "data.label_column=5"], 2, "column"),
    ("texts-folder", [*X, "data.path={w}/folder"], 2, "{w}/folder"),
    ("texts-tokenizer", [*X, "data.path={w}/texts.csv", "data.tokenizer=bogus"], 2, "data.tokenizer: expected one of"),
    # ---- caption folders ---------------------------------------------------------------------------------------
    ("captions-root-missing", [*C, "data.root={w}/nothere"], 2, "{w}/nothere"),
    ("captions-file-missing", [*C, "data.root={w}/nocap"], 2, "captions.tsv"),
    ("captions-no-images", [*C, "data.root={w}/folder"], 2, "{w}/folder"),
    ("captions-not-utf8", [*C, "data.root={w}/badcap"], 2, "is not UTF-8 text"),
    ("captions-ghost-image", [*C, "data.root={w}/ghost"], 2, "missing.png"),
    ("captions-no-tab", [*C, "data.root={w}/notabcap"], 2, "captions.tsv"),
    (
        "captions-broken-image",
        [*C, "data.root={w}/brokencap", "data.image_size=null", "data.resize=false"],
        2,
        "x.png: not a readable image",
    ),
    (
        "captions-sizes-differ",
        [*C, "data.root={w}/sizescap", "data.image_size=null", "data.resize=false"],
        2,
        "x.png: image is 16×24 (H×W), expected 32×32",
    ),
    ("captions-channels", [*C, "data.root={w}/cap", "data.channels=2"], 2, "data.channels: expected one of"),
    # ---- segmentation folders ----------------------------------------------------------------------------------
    ("masks-root-missing", [*S, "data.root={w}/nothere"], 2, "{w}/nothere"),
    ("masks-folder-missing", [*S, "data.root={w}/nomasks"], 2, "masks"),
    ("masks-one-missing", [*S, "data.root={w}/lonely"], 2, "x.png"),
    ("masks-wrong-size", [*S, "data.root={w}/wrongmask"], 2, "16×16"),
    ("masks-unreadable", [*S, "data.root={w}/badmask"], 2, "badmask/masks/x.png: not a readable mask image"),
    ("masks-image-unreadable", [*S, "data.root={w}/badimage"], 2, "not a readable image"),
    ("masks-no-images", [*S, "data.root={w}/noimages"], 2, "{w}/noimages"),
    ("masks-channels", [*S, "data.root={w}/seg", "data.channels=2"], 2, "data.channels: expected one of"),
    # ---- eeap test ---------------------------------------------------------------------------------------------
    ("test-missing", ["test", "{w}/nothere.ckpt"], 2, "checkpoint not found: {w}/nothere.ckpt"),
    ("test-truncated", ["test", "{w}/truncated.ckpt"], 2, "truncated.ckpt: not a readable checkpoint"),
    ("test-crafted", ["test", "{w}/crafted.ckpt"], 2, ": not a readable checkpoint (UnpicklingError)"),
    ("test-foreign", ["test", "{w}/foreign.ckpt"], 2, "not a checkpoint written by eeap train"),
    ("test-folder", ["test", "{w}/folder"], 2, "checkpoint not found"),
    (
        "test-no-weights",
        ["test", "{w}/noweights.ckpt"],
        2,
        "noweights.ckpt: not a checkpoint written by eeap train (no",
    ),
    ("test-edited-sizes", ["test", "{w}/resized.ckpt"], 2, "holds another model than this config builds (embed."),
    ("test-unknown-key", ["test", "{w}/dates.ckpt", "data.bogus=1"], 2, "data.bogus: unknown key"),
    ("test-other-data", ["test", "{w}/dates.ckpt", "data={type: digits}"], 2, "data"),
    # ---- eeap predict ------------------------------------------------------------------------------------------
    ("predict-missing", ["predict", "{w}/nothere.ckpt"], 2, "checkpoint not found: {w}/nothere.ckpt"),
    ("predict-random-bytes", ["predict", "{w}/random.bin"], 2, ": not a readable checkpoint"),
    ("predict-crafted", ["predict", "{w}/crafted.ckpt"], 2, ": not a readable checkpoint (UnpicklingError)"),
    ("predict-foreign", ["predict", "{w}/foreign.ckpt"], 2, "not a checkpoint written by eeap train"),
    ("export-edited-sizes", ["export", "{w}/resized.ckpt", "--out", "{w}/exported"], 2, "holds another model"),
    ("export-no-weights", ["export", "{w}/noweights.ckpt", "--out", "{w}/exported"], 2, "no model weights"),
    ("predict-no-weights", ["predict", "{w}/noweights.ckpt"], 2, "(no model weights, 'state_dict')"),
    ("predict-edited-sizes", ["predict", "{w}/resized.ckpt"], 2, "resized.ckpt: the checkpoint holds another model"),
    ("predict-input-missing", ["predict", "{w}/dates.ckpt", "--input", "{w}/nothere.txt"], 2, "--input: file not"),
    (
        "predict-input-folder",
        ["predict", "{w}/dates.ckpt", "--input", "{w}/folder"],
        2,
        "--input: {w}/folder is a folder; this model reads its inputs as lines of a text file",
    ),
    (
        "predict-input-not-utf8",
        ["predict", "{w}/dates.ckpt", "--input", "{w}/latin1-lines.txt"],
        1,
        "line 1: not UTF-8 text (bytes b'\\xe4'); skipped",
    ),
    ("predict-stdin-not-utf8", ["predict", "{w}/dates.ckpt"], 1, "line 1: not UTF-8 text (bytes b'\\xe4'); skipped"),
    ("predict-output-folder", ["predict", "{w}/dates.ckpt", "--output", "{w}/folder"], 2, "is a folder; give a file"),
    (
        "predict-output-below-file",
        ["predict", "{w}/dates.ckpt", "--output", "{w}/afile/out.txt"],
        2,
        "--output {w}/afile/out.txt: {w}/afile is a file, not a folder; give another --output",
    ),
    ("predict-output-read-only", ["predict", "{w}/dates.ckpt", "--output", "/sys/out.txt"], 2, "cannot write in /sys"),
    (
        "predict-plots-a-file",
        ["predict", "{w}/dates.ckpt", "--plot-attention", "{w}/afile"],
        2,
        "--plot-attention {w}/afile: a file is in the way",
    ),
    (
        "predict-plots-below-file",
        ["predict", "{w}/dates.ckpt", "--plot-attention", "{w}/afile/plots"],
        2,
        "{w}/afile is a file, not a folder",
    ),
    (
        "predict-plots-read-only",
        ["predict", "{w}/dates.ckpt", "--plot-attention", "/sys/plots"],
        2,
        "cannot write in /sys",
    ),
    ("predict-out-dir-for-lines", ["predict", "{w}/dates.ckpt", "--out-dir", "{w}/masks"], 2, "writes no files"),
    (
        "predict-out-dir-a-file",
        ["predict", "{w}/seg.ckpt", "--out-dir", "{w}/afile"],
        2,
        "--out-dir {w}/afile: a file is in the way",
    ),
    ("predict-out-dir-read-only", ["predict", "{w}/seg.ckpt", "--out-dir", "/sys/masks"], 2, "cannot write in /sys"),
    # per-line problems: the other lines are answered, each bad one is a warning line, and the exit is 1
    ("predict-empty-line", ["predict", "{w}/dates.ckpt", "--input", "{w}/empty-line.txt"], 1, "line 2: empty input"),
    ("predict-long-line", ["predict", "{w}/dates.ckpt", "--input", "{w}/long-line.txt"], 1, "line 1:"),
    ("predict-nul-in-path", ["predict", "{w}/seg.ckpt", "--input", "{w}/nul-path.txt"], 1, "holds a NUL byte"),
    (
        "predict-image-missing",
        ["predict", "{w}/seg.ckpt", "--input", "{w}/missing-image.txt"],
        1,
        "nothere.png: image file not found",
    ),
    ("predict-image-broken", ["predict", "{w}/seg.ckpt", "--input", "{w}/broken-image.txt"], 1, "not a readable"),
]


def test_the_corpus_is_large_and_its_names_unique():
    assert len(CASES) >= 150 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, argv, code, words", CASES, ids=[case[0] for case in CASES])
def test_bad_input_gives_one_line_and_its_exit_code(w, capsys, monkeypatch, name, argv, code, words):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.chdir(w)  # resume=last looks under ./runs
    stdin = io.TextIOWrapper(io.BytesIO("3 März 2021\n".encode("latin-1")))
    monkeypatch.setattr(sys, "stdin", stdin)
    argv = [a.replace("{w}", str(w)) for a in argv]
    run_dir = w / "runs" / name
    if argv[0] == "train" and len(argv) > 2 and not any(a.startswith(("run_dir=", "resume=")) for a in argv):
        argv.append(f"run_dir={run_dir}")
    result = main(argv)
    err = capsys.readouterr().err
    words = words.replace("{w}", str(w))
    kind = "error" if code == 2 else "warning"
    lines = [line for line in err.splitlines() if line.startswith(f"{kind}:")]
    assert result == code and "Traceback" not in err, err
    assert len(lines) == 1 and words in lines[0], err
    assert not (w / "code-ran").exists()  # no checkpoint ran code, whatever the environment said
    assert not (run_dir / "checkpoints").exists()  # nothing was trained, nothing written


def test_the_whole_config_is_checked_before_any_data_is_read(tmp_path, capsys):
    """A typo in a model key fails in one line before the data: the data file named here does not even exist."""
    from eeap.training.run import main

    parallel = ROOT / "configs" / "translation" / "parallel.yaml"
    for key, message in [
        ("model.encode.hiden=3", "error: model.encode.hiden: unknown key for encode 'rnn'. Valid keys: hidden,"),
        ("model.attend.type=dott", "error: model.attend.type: unknown attend type 'dott'"),
        ("model.predict.hidden=big", "error: model.predict.hidden: expected int"),
    ]:
        code = main([str(parallel), f"data.train={tmp_path}/not-there.tsv", key, f"run_dir={tmp_path}/run"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
