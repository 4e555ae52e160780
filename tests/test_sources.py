"""Signatures read from the sources (``eeap.config.sources``) against the real classes, for every registered name; and a
config checked whole without importing torch."""

import subprocess
import sys
import textwrap

import pytest

from eeap.config.registry import REGISTRIES, accepted_parameters, parameter_types, part_parameters, type_name
from eeap.config.sources import stand_in
from tests.conftest import ROOT

NAMES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]


@pytest.mark.parametrize("kind, name", NAMES, ids=[f"{k}-{n}" for k, n in NAMES])
def test_the_stand_in_has_the_real_classes_parameters_defaults_and_types(kind, name):
    registry = REGISTRIES[kind]
    module, cls_name, _ = registry.index()[name]
    described = stand_in(module, cls_name, name, kind)
    assert described is not None, f"{kind} '{name}' cannot be read from its source"
    real = registry.get(name)
    real_params, read_params = accepted_parameters(real), accepted_parameters(described)
    assert list(read_params) == list(real_params)
    for key, parameter in real_params.items():
        assert read_params[key].default == parameter.default, key
    real_types, read_types = parameter_types(real), parameter_types(described)
    assert {k: type_name(real_types[k]) for k in real_params if k in real_types} == {
        k: type_name(read_types[k]) for k in real_params if k in read_types
    }
    assert {k: r.registry_kind for k, r in part_parameters(real).items()} == {
        k: r.registry_kind for k, r in part_parameters(described).items()
    }


def test_a_class_whose_parameters_pass_on_to_a_foreign_base_is_not_read(tmp_path, monkeypatch):
    """A ``**kwargs`` that passes on to a class of another package cannot be read: None, and the caller imports."""
    from eeap.config import sources

    path = tmp_path / "wrapper.py"
    path.write_text(
        textwrap.dedent(
            """
            from torch import nn
            from eeap.config.registry import PositiveInt

            class Wrapper(nn.Linear):
                def __init__(self, width: PositiveInt = 3, **kwargs):
                    super().__init__(width, width, **kwargs)

            class Plain:
                def __init__(self, width: PositiveInt = 3, *, name: str = "x"):
                    self.width = width
            """
        )
    )
    monkeypatch.setattr(sources, "own_modules", lambda: {"eeap.wrapper": path})
    for cached in (sources.source, sources.resolve):
        cached.cache_clear()
    try:
        assert sources.stand_in("eeap.wrapper", "Wrapper", "wrapper", "encode") is None
        plain = sources.stand_in("eeap.wrapper", "Plain", "plain", "encode")
        params = accepted_parameters(plain)
        assert {k: p.default for k, p in params.items()} == {"width": 3, "name": "x"}
        assert type_name(parameter_types(plain)["width"]) == "int ≥ 1"
    finally:
        for cached in (sources.source, sources.resolve):
            cached.cache_clear()


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.encode.hiden=3", "error: model.encode.hiden: unknown key for encode 'rnn'. Valid keys: hidden,"),
        ("model.attend={type: local, score: {type: general, scale: 2}}", "error: model.attend.score.scale: unknown"),
        ("data.vocab_size=many", "error: data.vocab_size: expected int ≥ 1 for data 'parallel', got str 'many'"),
        ("model.label_smoothing=1.5", "error: model.label_smoothing: expected float in [0, 1]"),
        ("trainer.callbacks=[{type: swa, swa_lr: 0.1}]", "error: trainer.callbacks.0.swa_lr: unknown key"),
    ],
)
def test_a_bad_config_is_refused_without_importing_torch_or_reading_the_data(tmp_path, override, message):
    """The whole config is checked from the sources: one line, exit 2, and neither torch nor Lightning imported
    (what makes a typo fail in well under 2 s, before a corpus of millions is read)."""
    script = textwrap.dedent(
        f"""
        import sys
        from eeap.training.run import main
        code = main([{str(ROOT / "configs" / "translation" / "parallel.yaml")!r}, {f"data.train={tmp_path}/big.tsv"!r},
                     {override!r}, {f"run_dir={tmp_path}/run"!r}])
        print("imported:", sorted(m for m in ("torch", "lightning") if m in sys.modules))
        sys.exit(code)
        """
    )
    (tmp_path / "big.tsv").write_text("a\tb\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "imported: []" in result.stdout
    assert not (tmp_path / "run").exists()
