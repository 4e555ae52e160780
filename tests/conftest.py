"""Shared fixtures: tiny, fast versions of the real configs."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATES = ROOT / "configs" / "translation" / "dates.yaml"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# the runs under test (and their subprocesses) cache prepared data in a folder of their own, not in ~/.cache
os.environ["EEAP_CACHE"] = tempfile.mkdtemp(prefix="eeap-test-cache-")
atexit.register(shutil.rmtree, os.environ["EEAP_CACHE"], True)

QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "model.plot_examples=0"]
TINY_DATES = QUIET + [
    "data.train_size=300",
    "data.val_size=40",
    "data.test_size=40",
    "data.batch_size=32",
    "model.embed.dim=16",
    "model.encode.hidden=16",
    "model.predict.embed_dim=16",
    "model.predict.hidden=16",
    # a constant learning rate and one validation per epoch, so changing max_epochs changes nothing else
    "model.optim.scheduler=none",
    "trainer.val_check_interval=1.0",
]


@pytest.fixture(autouse=True)
def kernels_backend():
    """Every test starts with the default backend of EEAP's fused kernels, and leaves it so."""
    from eeap import kernels

    kernels.use("auto")
    yield
    kernels.use("auto")


@pytest.fixture
def tiny(tmp_path):
    """Load a config quietly under tmp_path (the dates config also shrunk to seconds); extra overrides on top."""
    from eeap.config.loader import load_config

    def load(*overrides, config=DATES):
        base = TINY_DATES if config == DATES else QUIET
        return load_config(config, base + [f"run_dir={tmp_path / 'run'}", *overrides])

    return load
