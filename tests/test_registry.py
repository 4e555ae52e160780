"""Building components by name, and the one-line errors for bad sections."""

import pytest

import eeap  # noqa: F401
from eeap.errors import ConfigError
from eeap.registry import ATTEND, DATA, ENCODE, Registry, type_matches


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(ConfigError) as e:
        ATTEND.build({"type": "addtive"}, "model.attend", query_dim=4, key_dim=4)
    message = str(e.value)
    assert message.startswith("model.attend.type: unknown attend type 'addtive'. Valid options: additive, ")
    assert "Did you mean 'additive'?" in message and "\n" not in message


def test_unknown_key_names_component_and_valid_keys():
    with pytest.raises(ConfigError, match=r"model.attend.hiden_dim: unknown key for attend 'additive'. "
                                          r"Valid keys: hidden_dim. Did you mean 'hidden_dim'\?"):
        ATTEND.build({"type": "additive", "hiden_dim": 8}, "model.attend", query_dim=4, key_dim=4)


def test_wrong_type_and_literal():
    with pytest.raises(ConfigError, match=r"model.encode.hidden: expected int for encode 'rnn', got str 'big'"):
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


@pytest.mark.parametrize("value, annotation, ok", [
    (1, float, True), (1.5, int, False), (None, "Optional[int]", True), ([1, 2], "list[int]", True),
    ([1, "x"], "list[int]", False), ("x", "Union[int, str]", True), ({"a": 1}, dict, True),
])
def test_type_matches(value, annotation, ok):
    from typing import Optional, Union  # noqa: F401

    annotation = eval(annotation) if isinstance(annotation, str) else annotation
    assert type_matches(value, annotation) is ok
