"""Building components by name, and the one-line errors for bad sections."""

import pytest

import eeap  # noqa: F401
from eeap.config.registry import (
    ATTEND,
    DATA,
    ENCODE,
    Fraction,
    PositiveFloat,
    PositiveInt,
    Probability,
    Range,
    Registry,
    type_matches,
)
from eeap.errors import ConfigError


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(ConfigError) as e:
        ATTEND.build({"type": "addtive"}, "model.attend", query_dim=4, key_dim=4)
    message = str(e.value)
    assert message.startswith("model.attend.type: unknown attend type 'addtive'. Valid options: additive, ")
    assert "Did you mean 'additive'?" in message and "\n" not in message


def test_unknown_key_names_component_and_valid_keys():
    with pytest.raises(
        ConfigError,
        match=r"model.attend.hiden_dim: unknown key for attend 'additive'. "
        r"Valid keys: hidden_dim. Did you mean 'hidden_dim'\?",
    ):
        ATTEND.build({"type": "additive", "hiden_dim": 8}, "model.attend", query_dim=4, key_dim=4)


def test_wrong_type_and_literal():
    with pytest.raises(ConfigError, match=r"model.encode.hidden: expected int ≥ 1 for encode 'rnn', got str 'big'"):
        ENCODE.build({"type": "rnn", "hidden": "big"}, "model.encode", input_dim=4)
    with pytest.raises(ConfigError, match=r"model.encode.cell: expected one of 'gru', 'lstm'"):
        ENCODE.build({"type": "rnn", "cell": "rnn"}, "model.encode", input_dim=4)
    with pytest.raises(ConfigError, match="expected int"):
        ENCODE.build({"type": "rnn", "hidden": True}, "model.encode", input_dim=4)  # a bool is no int


def test_framework_keys_cannot_be_set():
    with pytest.raises(ConfigError, match=r"model.attend.query_dim: set by the framework"):
        ATTEND.build({"type": "dot", "query_dim": 3}, "model.attend", query_dim=4, key_dim=4)


def test_missing_type_and_non_mapping():
    with pytest.raises(ConfigError, match=r"model.attend: missing 'type'. Valid options:"):
        ATTEND.build({"dim": 3}, "model.attend")
    with pytest.raises(ConfigError, match=r"expected a section with a 'type' key, got str"):
        ATTEND.build("additive", "model.attend")


def test_base_class_parameters_pass_through_kwargs():
    data = DATA.build({"type": "dates", "train_size": 10, "batch_size": 7}, "data", seed=0)
    assert data.batch_size == 7
    with pytest.raises(ConfigError, match=r"data.batchsize: unknown key for data 'dates'.*Did you mean 'batch_size'"):
        DATA.build({"type": "dates", "batchsize": 7}, "data", seed=0)


def test_register_twice_is_refused_and_names_sorted():
    registry = Registry("thing")

    @registry.register("b")
    class B:
        pass

    @registry.register("a")
    class A:
        pass

    assert registry.names() == ["a", "b"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(B)


def test_numbers_out_of_range_name_the_range():
    with pytest.raises(ConfigError) as e:
        ENCODE.build({"type": "rnn", "hidden": 0}, "model.encode", input_dim=4)
    assert str(e.value) == "model.encode.hidden: expected int ≥ 1 for encode 'rnn', got int 0"
    with pytest.raises(ConfigError) as e:
        ENCODE.build({"type": "rnn", "dropout": 1.0}, "model.encode", input_dim=4)
    assert str(e.value) == "model.encode.dropout: expected float in [0, 1) for encode 'rnn', got float 1.0"
    with pytest.raises(ConfigError) as e:
        ATTEND.build({"type": "multihead", "dim": 0}, "model.attend", query_dim=4, key_dim=4)
    assert str(e.value) == "model.attend.dim: expected int ≥ 1 or null for attend 'multihead', got int 0"
    assert ENCODE.build({"type": "rnn", "dropout": 0.0, "hidden": 1}, "model.encode", input_dim=4).output_dim == 2


def test_value_errors_of_a_constructor_become_one_line():
    registry = Registry("thing")

    @registry.register("picky")
    class Picky:
        def __init__(self, size: int = 2) -> None:
            if size % 2:
                raise ValueError(f"size {size} is odd\nsecond line")

    with pytest.raises(ConfigError) as e:
        registry.build({"type": "picky", "size": 3}, "model.thing")
    assert str(e.value) == "model.thing: size 3 is odd"
    with pytest.raises(ConfigError) as e:  # torch's own checks, e.g. heads that do not divide the size
        ATTEND.build({"type": "multihead", "num_heads": 3}, "model.attend", query_dim=4, key_dim=4)
    assert str(e.value) == "model.attend: multihead dim 4 is not divisible by num_heads 3"


@pytest.mark.parametrize(
    "bounds, inside, outside, text",
    [
        (Range(low=1), [1, 7], [0, -1], "≥ 1"),
        (Range(low=0, open_low=True), [1e-9, 3], [0, -2], "> 0"),
        (Range(high=5), [5, -10], [5.5], "≤ 5"),
        (Range(0, 1, open_high=True), [0, 0.5, 0.999], [1, -0.1], "in [0, 1)"),
        (Range(0, 1, open_low=True), [1, 0.1], [0, 1.5], "in (0, 1]"),
        (Range(0, 2**32 - 1), [0, 4294967295], [-1, 4294967296], "in [0, 4294967295]"),
        (Range(-0.5, 2.5), [-0.5, 2.5], [-0.6], "in [-0.5, 2.5]"),
    ],
)
def test_range(bounds, inside, outside, text):
    assert all(v in bounds for v in inside) and not any(v in bounds for v in outside)
    assert str(bounds) == text


@pytest.mark.parametrize(
    "value, annotation, ok",
    [
        (1, float, True),
        (1.5, int, False),
        (None, "Optional[int]", True),
        ([1, 2], "list[int]", True),
        ([1, "x"], "list[int]", False),
        ("x", "Union[int, str]", True),
        ({"a": 1}, dict, True),
        (1, PositiveInt, True),
        (0, PositiveInt, False),
        (2.0, PositiveInt, False),
        (0, PositiveFloat, False),
        (0.5, Fraction, True),
        (1, Fraction, False),
        (1, Probability, True),
        (None, "Optional[PositiveInt]", True),
        ([0.9, 0.999], "tuple[Fraction, Fraction]", True),
        ([0.9], "tuple[Fraction, Fraction]", False),
        ([0.9, 1.0], "tuple[Fraction, Fraction]", False),
        ([3, 0], "list[PositiveInt]", False),
        (5.0, "Union[PositiveInt, Fraction]", False),
        (3, "Union[PositiveInt, Fraction]", True),
    ],
)
def test_type_matches(value, annotation, ok):
    from typing import Optional, Union  # noqa: F401

    annotation = eval(annotation) if isinstance(annotation, str) else annotation
    assert type_matches(value, annotation) is ok
