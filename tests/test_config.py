"""Config composition, overrides, interpolation and validation."""

import textwrap

import pytest

from eeap.config.loader import apply_overrides, compose, load_config
from eeap.errors import ConfigError
from tests.conftest import DATES


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_merge_in_order_then_file_on_top(tmp_path):
    write(tmp_path / "a.yaml", "trainer: {max_epochs: 1, devices: 1}\nname: a\n")
    write(tmp_path / "b.yaml", "trainer: {max_epochs: 2}\n")
    top = write(tmp_path / "top.yaml", "defaults: [a.yaml, b.yaml]\ntrainer: {devices: 2}\n")
    cfg = compose(top)
    assert cfg.trainer.max_epochs == 2 and cfg.trainer.devices == 2 and cfg.name == "a"


def test_self_include_and_missing_default(tmp_path):
    loop = write(tmp_path / "loop.yaml", "defaults: [loop.yaml]\n")
    with pytest.raises(ConfigError, match="includes itself"):
        compose(loop)
    broken = write(tmp_path / "broken.yaml", "defaults: [nothere.yaml]\n")
    with pytest.raises(ConfigError, match="config file not found: .*nothere.yaml"):
        compose(broken)


def test_overrides_are_typed_and_type_change_resets_section():
    cfg = load_config(DATES, ["trainer.max_epochs=3", "model.attend.type=general", "trainer.precision=bf16-mixed"])
    assert cfg.trainer.max_epochs == 3 and isinstance(cfg.trainer.max_epochs, int)
    assert dict(cfg.model.attend) == {"type": "general"}
    cfg = load_config(DATES, ["model.attend.hidden_dim=32"])
    assert cfg.model.attend.hidden_dim == 32 and cfg.model.attend.type == "additive"
    cfg = load_config(DATES, ["model.attend.hidden_dim=32", "model.attend.type=additive"])  # same type: kept
    assert cfg.model.attend.hidden_dim == 32
    cfg = load_config(DATES, ["model.attend.type=local", "model.attend.window=3"])
    assert dict(cfg.model.attend) == {"type": "local", "window": 3}
    cfg = load_config(DATES, ["model.attend={type: dot}"])  # a whole section of another type: afresh too
    assert dict(cfg.model.attend) == {"type": "dot"}
    cfg = load_config(DATES, ["model.attend={type: additive, hidden_dim: 8}"])  # same type: merged
    assert cfg.model.attend.hidden_dim == 8 and cfg.model.attend.type == "additive"


def test_logger_none_and_interpolation(tmp_path):
    cfg = load_config(DATES, ["logger=none"])
    assert list(cfg.logger.use) == []
    for written in ("none", "null", "false"):  # in a file as on the command line (a file's 'none' was refused)
        quiet = write(tmp_path / f"{written}.yaml", f"defaults: [{DATES}]\nlogger: {written}\n")
        assert list(load_config(quiet).logger.use) == [] and load_config(quiet).logger.wandb.mode == "offline"
    top = write(
        tmp_path / "i.yaml",
        f"""\
        defaults: [{DATES}]
        size: 32
        model:
          encode: {{hidden: '${{size}}'}}
        """,
    )
    with pytest.raises(ConfigError, match="size: unknown key for the top section"):
        load_config(top)
    write(
        top,
        f"""\
        defaults: [{DATES}]
        model:
          encode: {{hidden: '${{model.predict.hidden}}'}}
        """,
    )
    assert load_config(top).model.encode.hidden == 128


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs: expected int ≥ -1 for the trainer section, got str 'abc'"),
        (
            "trainer.val_check_interval=5.0",
            r"trainer.val_check_interval: expected int ≥ 1 or float in \(0, 1\] for the trainer section, got float 5.0",
        ),
        ("seed=-1", r"seed: expected int in \[0, 4294967295\] for the top section, got int -1"),
        (
            "early_stopping.patience=-1",
            "early_stopping.patience: expected int ≥ 0 or null for the early_stopping section",
        ),
        ("trainer.max_epoch=3", "trainer.max_epoch: unknown key for lightning.Trainer.*Did you mean 'max_epochs'"),
        ("nme=x", "nme: unknown key for the top section.*Did you mean 'name'"),
        ("logger.wandb.mode=onlin", "logger.wandb.mode: expected one of 'offline', 'online', 'disabled'"),
        ("early_stopping.patience=soon", "early_stopping.patience: expected int ≥ 0 or null"),
        ("trainer.max_epochs", "override 'trainer.max_epochs' is not of the form key=value"),
    ],
)
def test_bad_values_give_one_line(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(DATES, [override])
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
    bad = write(tmp_path / "bad.yaml", "a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listed = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(listed)


def test_required_sections(tmp_path):
    with pytest.raises(ConfigError, match="name: required by the top section and missing"):
        load_config(write(tmp_path / "empty.yaml", "data: {type: dates}\nmodel: {type: translation}\n"))


def test_apply_overrides_adds_new_keys():
    from omegaconf import OmegaConf

    cfg = apply_overrides(OmegaConf.create({"a": {"b": 1}}), ["a.c=[1, 2]", "d=null"])
    assert cfg.a.c == [1, 2] and cfg.d is None


def test_a_new_type_in_a_file_replaces_the_section(tmp_path):
    top = write(
        tmp_path / "t.yaml",
        f"""\
        defaults: [{DATES}]
        model:
          encode: {{type: transformer, layers: 1}}
          attend: {{hidden_dim: 7}}
        """,
    )
    cfg = load_config(top)
    assert dict(cfg.model.encode) == {"type": "transformer", "layers": 1}
    assert dict(cfg.model.attend) == {"type": "additive", "hidden_dim": 7}  # same type: merged
