"""What the commands print: the default command's lines (count and content), warnings as one line, Lightning's and
W&B's chatter kept out unless EEAP_DEBUG=1, the kernel build announced, W&B's own login check."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATES, ROOT

NOISE = ("GPU available", "TPU available", "litlogger", "limit_", "v_num", "_pytree", "FLOPs", "wandb:", "Tip:", "\x1b")


def clean_env(**extra):
    """The environment of a user's shell: W&B offline (no network here) but not silenced by the test set-up."""
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "EEAP_DEBUG")}
    return {**env, "WANDB_MODE": "offline", **extra}


def test_the_default_command_prints_the_run_folder_a_line_a_validation_and_where_the_wandb_run_is(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        str(DATES),
        "trainer.max_steps=40",
        "trainer.val_check_interval=20",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # standard output is the final metrics, once, and nothing else
    assert metrics["steps"] == 40 and 0 <= metrics["test/exact_match"] <= 1
    lines = result.stderr.splitlines()
    if lines[0].startswith("building EEAP's CPU kernels"):  # the first run on a machine
        assert re.fullmatch(r"EEAP's CPU kernels built in \d+ s \(kept in .+\)", lines[1])
        lines = lines[2:]
    run_dir = metrics["run_dir"]
    assert re.fullmatch(rf"dates: translation task, [\d,]+ parameters; run folder {run_dir}", lines[0])
    number = r"[-\d.e+]+"
    for line, step in zip(lines[1:3], (19, 39)):  # the step the loggers record each validation at
        assert re.fullmatch(
            rf"step {step} · epoch 0 · val/bleu {number} · val/chrf {number} · val/exact_match {number} · "
            rf"val/loss {number} · val/token_accuracy {number} · best val/loss {number} \(step \d+\) · \d+ s",
            line,
        ), line
    offline = next((tmp_path / run_dir / "wandb").glob("offline-run-*"))
    assert lines[3] == f"W&B: offline run saved; upload it with: wandb sync {run_dir}/wandb/{offline.name}"
    assert len(lines) == 4, lines
    assert not [word for word in NOISE if word in result.stderr + result.stdout]


def test_eeap_debug_shows_what_the_libraries_say(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        str(DATES),
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=clean_env(EEAP_DEBUG="1"))
    assert result.returncode == 0, result.stderr
    for said in ("GPU available", "wandb:", "Total params"):
        assert said in result.stderr


WARN = """
import warnings
from eeap.console import command_warnings

def warn(category, module):
    warnings.warn_explicit(f"{module} says {category.__name__}", category, "file.py", 1, module=module)

with command_warnings():
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        warn(category, "lightning.pytorch.utilities._pytree")
        warn(category, "eeap.config.loader")
warn(FutureWarning, "torch.nn")
"""


def test_warnings_in_a_command_are_one_line_and_third_party_deprecations_are_not_shown():
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", WARN], capture_output=True, text=True, env=clean_env()
    )
    assert result.stderr.splitlines() == [
        "warning: eeap.config.loader says DeprecationWarning",
        "warning: eeap.config.loader says FutureWarning",
        "warning: lightning.pytorch.utilities._pytree says UserWarning",
        "warning: eeap.config.loader says UserWarning",
        "file.py:1: FutureWarning: torch.nn says FutureWarning",  # Python's way again after the command
    ]


def test_a_kernel_build_says_so_and_how_long_it_took(tmp_path, monkeypatch, capsys):
    import torch.utils.cpp_extension

    from eeap import kernels

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing built here yet
    monkeypatch.setattr(kernels, "can_build", lambda: True)
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_extension", None)
    built = object()
    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda *args, **kwargs: built)  # the compiler's half minute
    assert kernels.extension() is built
    lines = [line for line in capsys.readouterr().err.splitlines() if "cpp_extension" not in line]  # its import's
    assert lines[0] == "building EEAP's CPU kernels (once per machine)..."
    assert re.fullmatch(
        rf"EEAP's CPU kernels built in \d+ s \(kept in {re.escape(str(tmp_path))}/eeap/kernels/\w+\)", lines[1]
    )


CHECK = "from eeap.training.loggers import has_wandb_credentials; print(has_wandb_credentials())"


@pytest.mark.parametrize(
    ("base_url", "api_key", "expected"),
    [
        ("https://wandb.example.com", None, "True"),  # `wandb login --host` on a company's server
        (None, None, "False"),  # the public server: no entry for it
        ("https://other.example.com", None, "False"),
        (None, "x" * 40, "True"),
    ],
)
def test_wandb_login_is_wandbs_own_check_for_the_server_it_is_set_to(tmp_path, base_url, api_key, expected):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine wandb.example.com\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(NETRC=str(netrc), HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "config"))
    if base_url:
        env["WANDB_BASE_URL"] = base_url
    if api_key:
        env["WANDB_API_KEY"] = api_key
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    assert Path(netrc).read_text().count("machine") == 1  # read, never written
