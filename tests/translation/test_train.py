"""Real (small) trainings through train.py's code path: the default model, every attention, logging, resume, DDP."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eeap.attend.base import Attention
from eeap.config.registry import ATTEND
from eeap.model.checkpoints import load_task
from eeap.serving.inference import main as predict_main
from eeap.training.run import train
from tests.conftest import DATES, ROOT, TINY_DATES

HUMAN = ROOT / "tests" / "data" / "human_dates.tsv"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The README's default model, as configured, trained to early stopping (100% validation exact match)."""
    from eeap.config.loader import load_config

    run_dir = tmp_path_factory.mktemp("dates") / "run"
    cfg = load_config(DATES, [f"run_dir={run_dir}", "logger=none", "trainer.enable_progress_bar=false"])
    return train(cfg)


def test_default_model_reaches_full_exact_match_on_human_dates(default_run):
    assert default_run["test/exact_match"] == 1.0
    task = load_task(default_run["best_checkpoint"])
    lines = [line.split("\t") for line in HUMAN.read_text().splitlines()]
    outputs, problems = task.predict_lines([s for s, _ in lines])
    wrong = [(s, o["output"], t) for (s, t), o in zip(lines, outputs) if o["output"] != t]
    assert not wrong and not problems.messages


def test_run_folder_holds_config_checkpoints_and_metrics(default_run):
    from pathlib import Path

    run_dir = Path(default_run["run_dir"])
    assert (run_dir / "config.yaml").read_text().startswith("trainer:")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and Path(default_run["best_checkpoint"]).is_file()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test/exact_match"] == 1.0 and saved["epochs"] < 15  # early stopping at 100% validation


def test_predict_cli_handles_bad_lines(default_run, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_bytes(
        ("4 March 2021\n\n" + "1" * 60 + "\n3 März 2021\n").encode()
        + "5 März 2021\n".encode("latin-1")
        + b"12/25/2023\n"
    )
    code = predict_main(
        [
            default_run["best_checkpoint"],
            "--input",
            str(source),
            "--beam",
            "2",
            "--plot-attention",
            str(tmp_path / "plots"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1  # some lines were skipped
    assert out.splitlines() == ["2021-03-04", "", "", out.splitlines()[3], "", "2023-12-25"]
    assert "warning: line 2: empty input" in err
    assert "warning: line 3: 60 tokens, longer than this model's max_src_len=48; skipped" in err
    assert "warning: line 4: not in the vocabulary, read as <unk>: 'z', 'ä'" in err  # English months have no z
    assert "warning: line 5: not UTF-8 text (bytes b'\\xe4'); skipped" in err  # the lines after it still decoded
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["line00001.png", "line00004.png", "line00006.png"]


def test_predict_cli_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "x.ckpt").write_bytes(b"not a checkpoint")
    assert predict_main([str(tmp_path / "x.ckpt")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'x.ckpt'}: not a readable checkpoint (UnpicklingError)\n"
    assert predict_main([str(tmp_path / "none.ckpt")]) == 2


# Every attention by its defaults (queries and keys of one size, for the dot-product family), and variants.
ATTENDS = [[f"model.attend.type={name}", "model.encode.bidirectional=false"] for name in ATTEND.filling(Attention)] + [
    [],
    ["model.attend.type=cosine", "model.encode.bidirectional=false", "model.attend.learn_sharpness=true"],
    ["model.attend.type=local", "model.attend.mode=monotonic"],
    ["model.attend.type=hard", "model.attend.estimator=gumbel"],
    ["model.attend.type=gated", "model.attend.score={type: additive}"],
    ["model.attend=none"],
]


@pytest.mark.parametrize("overrides", ATTENDS, ids=lambda o: "-".join(x.split("=")[1] for x in o) or "default")
def test_every_attention_trains_in_the_translation_task(tiny, overrides):
    metrics = train(tiny("trainer.fast_dev_run=2", *overrides))
    assert 0.0 <= metrics["test/exact_match"] <= 1.0 and metrics["steps"] == 2


@pytest.mark.parametrize(
    "config", ["dates_bahdanau.yaml", "dates_luong.yaml", "dates_transformer.yaml", "numbers.yaml"]
)
def test_other_translation_configs_run(tiny, config):
    extra = ["data.train_size=200", "data.val_size=20", "data.test_size=20"]
    if config == "dates_transformer.yaml":
        extra += ["model.predict.dim=16", "model.embed.dim=16"]
    if config == "numbers.yaml":
        extra = ["data.max_number=999", "data.train_size=150", "data.val_size=10", "data.test_size=10"]
    metrics = train(tiny("trainer.fast_dev_run=2", *extra, config=ROOT / "configs" / "translation" / config))
    assert metrics["steps"] == 2


def test_parallel_config_on_user_files(tiny, tmp_path):
    (tmp_path / "pairs.tsv").write_text("".join(f"w{i} x{i % 7}\tv{i}\n" for i in range(80)))
    metrics = train(
        tiny(
            "trainer.fast_dev_run=2",
            f"data.train={tmp_path / 'pairs.tsv'}",
            "data.vocab_size=30",
            "model.embed.dim=16",
            "model.encode.hidden=16",
            "model.predict.embed_dim=16",
            "model.predict.hidden=16",
            config=ROOT / "configs" / "translation" / "parallel.yaml",
        )
    )
    assert metrics["steps"] == 2


def test_wandb_offline_csv_and_attention_figures(tiny, tmp_path):
    metrics = train(
        tiny("logger.use=[wandb, csv]", "trainer.max_epochs=1", "model.plot_examples=2", "trainer.log_every_n_steps=1")
    )
    run_dir = tmp_path / "run"
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))  # an offline run, `wandb sync`-able
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert any(row.get("val/exact_match") for row in rows) and any(row.get("train/loss") for row in rows)
    assert "sacrebleu_signature" in (run_dir / "csv" / "hparams.yaml").read_text()
    validated_at = metrics["steps"] - 1  # the validation ran before its epoch's last batch was counted
    assert sorted(p.name for p in (run_dir / "figures").iterdir() if p.name.startswith("val_")) == [
        f"val_attention_{i}-step{validated_at:07d}.png" for i in range(2)
    ]
    (val_row,) = [row for row in rows if row.get("val/exact_match")]
    assert int(val_row["step"]) == validated_at


def history(run_dir):
    from tests.wandb_records import of_type, run_files

    rows = []  # one dict per history row; a media value (W&B keeps its fields as nested keys) as a dict of its own
    for record in of_type(run_files(run_dir)[-1], "history"):
        row: dict = {}
        for item in record.item:
            key = [item.key] if item.key else list(item.nested_key)
            if len(key) == 1:
                row[key[0]] = json.loads(item.value_json)
            else:
                row.setdefault(key[0], {})[key[1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


def logged_tables(run_dir, key):
    """The tables logged under ``key``, in order, read from the run_table artifacts of the offline run."""
    from tests.wandb_records import of_type, run_files

    tables = []
    for artifact in of_type(run_files(run_dir)[-1], "artifact"):
        if artifact.type == "run_table":
            for entry in artifact.manifest.contents:
                if entry.path == f"{key}.table.json":
                    tables.append(json.loads(Path(entry.local_path).read_text()))
    return tables


def test_each_validation_logs_a_table_of_fixed_examples_on_the_step_of_its_metrics(tiny, tmp_path):
    keys = ["logger.use=[wandb]", "trainer.max_epochs=2", "model.plot_examples=3", "test=false"]
    train(tiny(*keys, "early_stopping.stopping_threshold=null"))
    run_dir = tmp_path / "run"
    rows = history(run_dir)
    metric_steps = [row["trainer/global_step"] for row in rows if "val/exact_match" in row]
    table_rows = [row for row in rows if "val/examples" in row]
    image_steps = [row["trainer/global_step"] for row in rows if "val/attention_0" in row]
    assert len(metric_steps) == 2 and [row["trainer/global_step"] for row in table_rows] == metric_steps
    assert image_steps == metric_steps  # images and metrics of one validation on one step
    for row in table_rows:
        assert row["val/examples"]["_type"] == "table-file" and row["val/examples"]["nrows"] == 3
    sources = []
    for table in logged_tables(run_dir, "val/examples"):  # as W&B keeps them: a run_table artifact per validation
        assert table["columns"] == ["example", "input", "output", "reference", "attention"]
        sources.append([r[1] for r in table["data"]])
        for _, _, output, reference, image in table["data"]:
            assert isinstance(output, str) and len(reference) == 10 and image["_type"] == "image-file"
            assert image["path"].startswith("media/images/") and image["width"] > 100
    assert sources[0] == sources[1] and len(set(sources[0])) == 3  # the same fixed examples each validation


def state(path):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 20  # last.ckpt is the final epoch's (2 epochs of 10 steps)
    return checkpoint["state_dict"]


def test_resume_continues_exactly(tiny, tmp_path):
    noisy = [
        "model.encode.dropout=0.3",
        "model.predict.teacher_forcing=0.5",
        "early_stopping.stopping_threshold=null",
        "test=false",
    ]
    straight = train(tiny(*noisy, "trainer.max_epochs=2", f"run_dir={tmp_path}/straight"))
    train(tiny(*noisy, "trainer.max_epochs=1", f"run_dir={tmp_path}/broken"))
    resumed = train(tiny(*noisy, "trainer.max_epochs=2", f"resume={tmp_path}/broken"))
    assert resumed["run_dir"] == f"{tmp_path}/broken" and resumed["steps"] == straight["steps"]
    a = state(f"{tmp_path}/straight/checkpoints/last.ckpt")
    b = state(f"{tmp_path}/broken/checkpoints/last.ckpt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_a_mid_epoch_checkpoint_continues_exactly(tiny, tmp_path):
    """Validating twice an epoch writes last.ckpt mid-epoch; the resumed run skips the batches already trained on."""
    noisy = [
        "model.encode.dropout=0.3",
        "model.predict.teacher_forcing=0.5",
        "early_stopping.stopping_threshold=null",
        "test=false",
        "trainer.val_check_interval=0.5",
        "trainer.max_epochs=2",
    ]
    straight = train(tiny(*noisy, f"run_dir={tmp_path}/straight"))
    train(tiny(*noisy, "trainer.max_steps=15", f"run_dir={tmp_path}/broken"))  # stops 5 batches into epoch 2
    broken = torch.load(f"{tmp_path}/broken/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert broken["global_step"] == 15
    resumed = train(tiny(*noisy, f"resume={tmp_path}/broken"))
    assert resumed["steps"] == straight["steps"] == 20
    a = state(f"{tmp_path}/straight/checkpoints/last.ckpt")
    b = state(f"{tmp_path}/broken/checkpoints/last.ckpt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_processes_keep_identical_weights(tmp_path):
    out = tmp_path / "weights"
    overrides = [o for o in TINY_DATES if not o.startswith("trainer.accelerator")] + [
        f"run_dir={tmp_path / 'run'}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.max_epochs=1",
        "test=false",
        "logger.use=[wandb, csv]",
        "model.plot_examples=1",
    ]
    result = subprocess.run(
        [sys.executable, "tests/ddp_worker.py", str(out), str(DATES), *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["global_step"] == 5  # 300 examples / (32 per batch × 2 processes), rounded up
    from tests.wandb_records import of_type, run_files

    (run_file,) = run_files(tmp_path / "run")  # one W&B run for the experiment, written by rank 0
    (run,) = of_type(run_file, "run")
    assert run.run_id == (tmp_path / "run" / "wandb-id").read_text().strip() == first["eeap"]["wandb_id"]
    assert len(logged_tables(tmp_path / "run", "val/examples")) == 1


@pytest.mark.parametrize(
    "overrides",
    [[], ["model.attend.type=multihead", "model.attend.num_heads=2"], ["model.attend.type=gated"]],
    ids=["additive", "multihead", "gated"],
)
def test_bf16_mixed_precision_trains_without_nan(tiny, overrides):
    metrics = train(tiny("trainer.fast_dev_run=2", "trainer.precision=bf16-mixed", *overrides))
    assert metrics["steps"] == 2 and metrics["test/loss"] == metrics["test/loss"]  # not NaN


class Payload:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_runs_code_from_a_checkpoint_and_refuses_bad_ones_in_one_line(tiny, tmp_path):
    trained = train(tiny("trainer.max_epochs=1", f"run_dir={tmp_path}/good"))
    good = torch.load(trained["best_checkpoint"], weights_only=True)
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({**good, "payload": Payload(str(marker))}, crafted)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(open(trained["best_checkpoint"], "rb").read()[:1000])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": good["state_dict"]}, foreign)
    cases = [
        (crafted, "not a readable checkpoint (UnpicklingError)"),
        (truncated, "not a readable checkpoint"),
        (foreign, "not a checkpoint written by eeap train"),
        (
            Path(trained["best_checkpoint"]),
            "the checkpoint holds another model than this config builds (embed.tokens.weight: (",
        ),
    ]
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "WANDB_MODE": "offline"}
    for path, words in cases:
        extra = ["model.embed.dim=8"] if path.name.startswith("best") else []
        result = subprocess.run(
            [
                sys.executable,
                "train.py",
                str(DATES),
                *TINY_DATES,
                f"resume={path}",
                f"run_dir={tmp_path}/resumed",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and lines[-1].startswith(f"error: resume={path}: ") and words in lines[-1]
        assert "Traceback" not in result.stderr and not marker.exists()
    assert not (tmp_path / "resumed").exists()  # nothing written


def test_predict_jsonl_n_best_scores_and_attention(default_run, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("4 March 2021\n\n12/25/2023\n")
    argv = [default_run["best_checkpoint"], "--input", str(source), "--beam", "4", "--n-best", "3"]
    assert predict_main([*argv, "--format", "jsonl", "--attention"]) == 1  # line 2 is skipped
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3] and records[1]["output"] is None
    first = records[0]
    assert first["input"] == "4 March 2021" and first["output"] == "2021-03-04" == first["n_best"][0]["output"]
    scores = [h["score"] for h in first["n_best"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and scores[0] == first["score"]
    attention = torch.tensor(first["attention"])  # (output tokens + EOS, source characters)
    assert attention.shape == (len("2021-03-04") + 1, len("4 March 2021"))
    assert torch.allclose(attention.sum(-1), torch.ones(len(attention)), atol=1e-3)
    assert predict_main([*argv, "--coverage", "0.5", "--length-penalty", "0", "--precision", "bf16"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9 and lines[0] == "2021-03-04" and lines[3:6] == ["", "", ""]  # 3 lines per input


def test_predict_answers_each_line_from_a_pipe_before_the_next_arrives(default_run):
    """Interactive use: the output of a line typed into standard input comes back while the input stays open."""
    child = subprocess.Popen(
        [sys.executable, "predict.py", default_run["best_checkpoint"]],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        for line, expected in (("4 March 2021", "2021-03-04"), ("12/25/2023", "2023-12-25")):
            child.stdin.write(line + "\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == expected  # blocks until that line is answered
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()


def test_a_resumed_run_continues_its_wandb_run_and_its_csv(tiny, tmp_path):
    from tests.wandb_records import of_type, run_files

    run_dir = tmp_path / "run"
    keys = ["logger.use=[wandb, csv]", "logger.wandb.group=ablation", "logger.wandb.job_type=train"]
    keys += ["logger.wandb.notes=first try", "early_stopping.stopping_threshold=null", "test=false"]
    train(tiny(*keys, "trainer.max_epochs=1", "logger.wandb.name=dates-small"))
    rows_before = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    train(tiny(*keys, "trainer.max_epochs=2", f"resume={run_dir}"))
    first, second = run_files(run_dir)
    (run_a,), (run_b,) = of_type(first, "run"), of_type(second, "run")
    kept = (run_dir / "wandb-id").read_text().strip()
    assert run_a.run_id == run_b.run_id == kept  # one W&B run across the resume
    assert run_a.display_name == "dates-small" and run_a.run_group == "ablation" and run_a.job_type == "train"
    assert run_a.notes == "first try"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["eeap"]["wandb_id"] == kept
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert rows[: len(rows_before)] == rows_before and len(rows) > len(rows_before)  # appended, not replaced
    assert {row["epoch"] for row in rows if row.get("epoch")} >= {"0", "1"}


def test_the_wandb_summary_holds_the_best_validation_and_the_tested_checkpoint(tiny, tmp_path):
    from tests.wandb_records import of_type, run_files

    # "best" as the highest validation loss: the first validation's, as the loss falls, so best and last differ
    best_first = ["checkpoint.monitor=val/loss", "checkpoint.mode=max"]
    metrics = train(
        tiny("logger.use=[wandb]", "trainer.max_epochs=3", "early_stopping.stopping_threshold=null", *best_first)
    )
    monitor = "val/loss"
    run_file = run_files(tmp_path / "run")[-1]

    def values(items):
        return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}

    summary = {}
    for record in of_type(run_file, "summary"):
        summary.update(values(record.update))
    validations = [v for v in (values(r.item) for r in of_type(run_file, "history")) if monitor in v]
    assert len(validations) == 3
    best = max(validations, key=lambda v: v[monitor])
    assert best is validations[0] and best[monitor] != validations[-1][monitor]
    assert summary[monitor] == best[monitor] == metrics[f"best/{monitor}"]  # the best validation, not the last
    assert summary["best/step"] == best["trainer/global_step"] == metrics["best/step"]
    assert summary["best_checkpoint"] == metrics["best_checkpoint"] and summary["fit_time_s"] > 0
    assert summary["test/exact_match"] == metrics["test/exact_match"]


def test_the_config_as_built_is_recorded_everywhere_and_rebuilds_the_model(tiny, tmp_path):
    import yaml

    from eeap import build
    from tests.wandb_records import of_type, run_files

    run_dir = tmp_path / "run"
    train(tiny("logger.use=[wandb]", "trainer.max_epochs=1", "model.attend={type: gated, score: {type: general}}"))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    encode, attend = saved["model"]["encode"], saved["model"]["attend"]
    assert encode["layers"] == 1 and encode["cell"] == "gru" and encode["dropout"] == 0.0  # defaults, not in the YAML
    assert attend["temperature"] == 0.5 and attend["score"] == {"type": "general"}
    assert saved["model"]["optim"]["betas"] == [0.9, 0.999] and saved["logger"]["wandb"]["save_code"] is False
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["eeap"]["config"] == saved
    logged = {}
    for record in of_type(run_files(run_dir)[-1], "config"):
        logged.update({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.update})
    assert logged["model"] == saved["model"] and logged["data"] == saved["data"]
    task, _ = build(run_dir / "config.yaml", ["run_dir=null"])  # `eeap train RUN_DIR/config.yaml` builds the same
    ours = {k: tuple(v.shape) for k, v in task.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}


def test_checkpoint_artifacts_carry_best_and_latest_aliases_on_the_right_files(tiny, tmp_path):
    from tests.wandb_records import of_type, run_files

    # best = the first validation (the highest loss, as it falls), so the best and the last checkpoint differ
    keys = ["logger.use=[wandb]", "logger.wandb.log_model=true", "checkpoint.monitor=val/loss", "checkpoint.mode=max"]
    metrics = train(tiny(*keys, "trainer.max_epochs=2", "early_stopping.stopping_threshold=null"))
    logged = [  # in the order logged; W&B gives each new version "latest", so it ends on the last one logged
        (json.loads(a.metadata)["checkpoint"], set(a.aliases))
        for a in of_type(run_files(tmp_path / "run")[-1], "artifact")
    ]
    last = str((tmp_path / "run" / "checkpoints" / "last.ckpt").resolve())
    best = str(Path(metrics["best_checkpoint"]).resolve())
    assert best != last and [path for path, _ in logged] == [best, last]
    assert [path for path, aliases in logged if "best" in aliases] == [best]  # "best" on the best only
    assert "latest" in logged[-1][1]


def test_a_learning_curve_figure_covers_the_whole_run_across_a_resume(tiny, tmp_path):
    run_dir = tmp_path / "run"
    keys = ["early_stopping.stopping_threshold=null", "test=false", "trainer.log_every_n_steps=5"]
    train(tiny(*keys, "trainer.max_epochs=1"))
    first = (run_dir / "figures" / "learning_curve.png").stat().st_mtime_ns
    train(tiny(*keys, "trainer.max_epochs=2", f"resume={run_dir}"))
    assert (run_dir / "figures" / "learning_curve.png").stat().st_mtime_ns > first
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    (curve,) = [state for key, state in checkpoint["callbacks"].items() if key.startswith("LearningCurve")]
    # the resumed run drew the first run's points too
    assert [step for step, _ in curve["val"]] == [9, 19] and [step for step, _ in curve["train"]] == [0, 5, 10, 15]
