"""The package as users install it: configs shipped inside it and found by name, ``eeap configs``, the version in
one place. (``.ci/wheel`` builds the wheel and trains from it outside the checkout.)"""

import subprocess
import sys
from importlib.metadata import version

import pytest
import tomllib
from omegaconf import OmegaConf

import eeap
from eeap.cli import main
from eeap.config.loader import compose, load_config, shipped_configs, shipped_folder
from eeap.errors import ConfigError
from tests.conftest import ROOT

RUN_CONFIGS = [name for name in shipped_configs() if not name.startswith(("trainer/", "logger/", "sweeps/"))]


def test_the_shipped_configs_are_the_checkouts_configs_folder():
    assert shipped_folder() == ROOT / "configs"  # an editable install maps eeap.configs onto configs/
    on_disk = sorted(p.relative_to(ROOT / "configs").with_suffix("").as_posix() for p in ROOT.glob("configs/*/*.yaml"))
    assert shipped_configs() == on_disk and "translation/dates" in on_disk and len(RUN_CONFIGS) >= 15


@pytest.mark.parametrize("name", RUN_CONFIGS)
def test_every_shipped_config_loads_by_name_as_by_path(name, monkeypatch, tmp_path):
    by_path = OmegaConf.to_container(load_config(ROOT / "configs" / f"{name}.yaml"))
    monkeypatch.chdir(tmp_path)  # away from the checkout: only the package can answer
    assert OmegaConf.to_container(load_config(name)) == by_path
    assert OmegaConf.to_container(load_config(f"{name}.yaml")) == by_path
    assert OmegaConf.to_container(load_config(f"configs/{name}.yaml")) == by_path  # the README's spelling


def test_patience_counts_the_metric_the_checkpoints_follow():
    # early stopping watches the task's metric unless told: parallel.yaml kept its best checkpoint by val/bleu while
    # its patience counted epochs without a better exact match (0 on real sentences), and stopped after 6 of 30
    # epochs at test BLEU 1.5
    checked, wrong = [], []
    for name in RUN_CONFIGS:
        cfg = OmegaConf.to_container(load_config(name))
        keep, stop = cfg.get("checkpoint") or {}, cfg.get("early_stopping") or {}
        if keep.get("monitor") and stop.get("patience") is not None:
            checked.append(name)
            if (stop.get("monitor"), stop.get("mode")) != (keep["monitor"], keep.get("mode")):
                wrong.append(name)
    assert {"translation/parallel", "captioning/formulas"} <= set(checked) and wrong == []


def test_defaults_name_shipped_configs_and_a_local_file_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("defaults: [translation/dates]\nname: mine\ntrainer: {max_epochs: 7}\n")
    cfg = compose(tmp_path / "mine.yaml")
    assert (cfg.name, cfg.trainer.max_epochs, cfg.trainer.gradient_clip_val) == ("mine", 7, 1.0)  # trainer/default's
    assert cfg.model.attend.type == "additive"
    (tmp_path / "translation").mkdir()  # a file of that name beside the config wins over the shipped one
    (tmp_path / "translation" / "dates").write_text("name: local\ndata: {type: dates}\nmodel: {type: translation}\n")
    assert compose(tmp_path / "mine.yaml").model == {"type": "translation"}


def test_an_unknown_name_says_what_is_near(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"no shipped config is named 'translation/dtes'; did you mean translation/dates"
    ):
        compose("translation/dtes")
    (tmp_path / "bad.yaml").write_text("defaults: [{trainer: default}]\n")
    with pytest.raises(ConfigError, match="'defaults' must be a list of config files or shipped configs' names"):
        compose(tmp_path / "bad.yaml")


def test_eeap_configs_lists_every_shipped_config_with_its_first_comment(capsys):
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == shipped_configs()
    dates = next(line for line in lines if line.split()[0] == "translation/dates")
    assert "The default model: human-written dates -> ISO dates." in dates


def test_eeap_configs_copy_writes_a_config_that_trains_from_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["configs", "copy", "translation/dates_luong", "edit.yaml"]) == 0
    assert capsys.readouterr().out == "wrote edit.yaml; train it with: eeap train edit.yaml\n"
    original = (ROOT / "configs" / "translation" / "dates_luong.yaml").read_text()
    assert (tmp_path / "edit.yaml").read_text() == original
    assert load_config("edit.yaml") == load_config("translation/dates_luong")  # its defaults resolve by name
    (tmp_path / "into").mkdir()
    assert main(["configs", "copy", "translation/dates", "into"]) == 0
    assert (tmp_path / "into" / "dates.yaml").is_file()


def test_eeap_configs_copy_keeps_an_existing_file_and_refuses_bad_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "edit.yaml").write_text("mine")
    assert main(["configs", "copy", "translation/dates", "edit.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == "error: edit.yaml already exists; give another DEST, or --force to replace it\n"
    assert (tmp_path / "edit.yaml").read_text() == "mine"
    assert main(["configs", "copy", "translation/dates", "edit.yaml", "--force"]) == 0
    assert (tmp_path / "edit.yaml").read_text().startswith("# The default model")
    capsys.readouterr()
    assert main(["configs", "copy", "translation/nope", "x.yaml"]) == 2
    assert capsys.readouterr().err.startswith("error: no shipped config is named 'translation/nope'")
    assert main(["configs", "copy", "translation/dates"]) == 2
    assert capsys.readouterr().err.startswith("error: eeap configs: copy needs a NAME and a DEST")
    assert not (tmp_path / "x.yaml").exists()


def test_the_version_is_written_once_and_eeap_version_prints_it(capsys):
    written = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert eeap.__version__ == version("eeap") == written
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"eeap {written}\n"
    result = subprocess.run([sys.executable, "-m", "eeap.cli", "--version"], capture_output=True, text=True)
    assert result.stdout == f"eeap {written}\n"


def test_the_package_declares_its_licence_and_types():
    from importlib.metadata import metadata

    meta = metadata("eeap")
    assert meta["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "eeap" / "py.typed").is_file()
    assert "## " in (ROOT / "CHANGELOG.md").read_text()
