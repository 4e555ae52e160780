"""Registries of components by kind, and building a component from its config section.

A config section ``{type: NAME, key: value, ...}`` builds the class registered under NAME, with the other keys as
constructor arguments. Keys are checked against the constructor's signature and type annotations, so a typo, a
wrong type or a number out of range fails at once with one line naming the component, the key and what is allowed.
Bounds are written in the annotation: ``hidden: PositiveInt = 128``, ``dropout: Fraction = 0.0`` (see ``Range``).
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, TypeVar

from eeap.config.schema import Fraction as Fraction
from eeap.config.schema import NonNegativeFloat as NonNegativeFloat
from eeap.config.schema import NonNegativeInt as NonNegativeInt
from eeap.config.schema import PositiveFloat as PositiveFloat
from eeap.config.schema import PositiveInt as PositiveInt
from eeap.config.schema import Probability as Probability
from eeap.config.schema import Range, Role
from eeap.config.sources import package_modules
from eeap.errors import ConfigError, one_line

T = TypeVar("T")


class Registry:
    """Names → classes for one kind of component (``embed``, ``encode``, ``attend``, ``predict``, ``task``, ``data``).

    A registry knows its names before any component is imported: it reads the sources of its ``packages`` for
    ``@<VARIABLE>.register("name")`` decorators, and imports a component's module only when that name is built or
    inspected. So ``import eeap`` stays light, and a new component is one new file in its kind's folder.
    Components registered from elsewhere (``@ATTEND.register`` in the user's own module, once imported) join too.

    # Parameters
    kind: the kind's name, used in error messages and as the config section's word.
    variable: the name this registry is bound to in ``eeap.config.registry`` (what the decorators in the sources say).
    packages: dotted packages whose modules hold this kind's components.
    """

    def __init__(self, kind: str, variable: str = "", packages: tuple[str, ...] = ()) -> None:
        self.kind, self.variable, self.packages = kind, variable, packages
        self._classes: dict[str, type] = {}
        self._index: Optional[dict[str, tuple[str, str, str]]] = None  # name -> (module, class, docstring's line)

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: put the class under ``name``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is registered twice: {self._classes[name]} and {cls}")
            self._classes[name] = cls
            cls.registered_name = name  # type: ignore[attr-defined]
            cls.registry_kind = self.kind  # type: ignore[attr-defined]
            return cls

        return decorate

    def index(self) -> dict[str, tuple[str, str, str]]:
        """Every name found in the sources of ``packages``: name -> (module, class name, its docstring's first
        line)."""
        if self._index is None:
            self._index = {}
            for module, path in package_modules(self.packages):
                for name, cls, doc in registered_in(path, self.variable):
                    self._index.setdefault(name, (module, cls, doc))
        return self._index

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(set(self.index()) | set(self._classes))

    def summary(self, name: str) -> str:
        """The first line of the docstring of the class registered under ``name``."""
        if name in self.index():
            return self.index()[name][2]
        return first_line(self._classes[name].__doc__)

    def get(self, name: str, where: str = "") -> Any:
        """The class registered under ``name``; an unknown name raises ConfigError with a did-you-mean."""
        if name not in self._classes and isinstance(name, str) and name in self.index():
            importlib.import_module(self.index()[name][0])
        if name not in self._classes:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where or self.kind}: unknown {self.kind} type '{name}'. Valid options: {', '.join(self.names())}.{hint}"
            )
        return self._classes[name]

    def described(self, name: str, where: str = "") -> Any:
        """For checking a config without importing: the class registered under ``name`` if its module is
        imported, else a stand-in read from its source (``eeap.config.sources``: the same parameters, defaults and
        annotations); the class itself where the source cannot be read. An unknown name is refused as in ``get``."""
        if name not in self._classes and isinstance(name, str) and name in self.index():
            from eeap.config.sources import stand_in

            module, cls, _ = self.index()[name]
            found = stand_in(module, cls, name, self.kind)
            if found is not None:
                return found
        return self.get(name, where)

    def filling(self, role: type) -> list[str]:
        """The names whose classes fill ``role`` (imports every module of this kind)."""
        return [name for name in self.names() if issubclass(self.get(name), role)]

    def settings(
        self, section: Mapping[str, Any] | None, where: str = "", role: Optional[type] = None, wired: Iterable[str] = ()
    ) -> tuple[Any, dict[str, Any]]:
        """The class a section ``{type: NAME, ...}`` names, and its settings: the section's keys, checked against
        the class's signature (names, types, ranges, ``role``), with every default filled in. ``wired``: the
        parameters the framework supplies, which a config may not set."""
        where = where or self.kind
        section = self.checked_section(section, where)
        cls = self.get(section["type"], where=f"{where}.type")
        if role is not None and not issubclass(cls, role):
            raise ConfigError(
                f"{where}.type: '{section['type']}' is {role_of(cls)}, but here {role_name(role)} is needed. "
                f"Valid options: {', '.join(self.filling(role)) or '(none)'}"
            )
        kwargs = {k: v for k, v in section.items() if k != "type"}
        wired = set(wired)
        check_arguments(cls, kwargs, where, wired=wired)
        defaults = {
            name: p.default
            for name, p in accepted_parameters(cls).items()
            if name not in kwargs and name not in wired and p.default is not inspect.Parameter.empty
        }
        return cls, {**kwargs, **defaults}

    def checked_section(self, section: Any, where: str) -> Mapping[str, Any]:
        """A component section, checked to be one: a missing section, one that is not a mapping, or one without a
        type is refused in one line."""
        if section is None:
            raise ConfigError(
                f"{where}: a {self.kind} section is required, with 'type' one of: {', '.join(self.names())}"
            )
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"{where}: expected a section with a 'type' key, got {type(section).__name__} {section!r}"
            )
        if "type" not in section:
            raise ConfigError(f"{where}: missing 'type'. Valid options: {', '.join(self.names())}")
        return section

    def check(self, section: Any, where: str = "", wired: Optional[Iterable[str]] = None) -> None:
        """Check a section and the parts inside it (``model.attend.score``) without building or importing
        anything (``described``): the names, unknown keys, value types and ranges, and missing keys. ``wired``:
        the parameters the framework supplies; None: every parameter without a default that the section leaves
        out (a builder supplies the sizes of the neighbouring parts)."""
        where = where or self.kind
        section = self.checked_section(section, where)
        cls = self.described(section["type"], f"{where}.type")
        kwargs = {k: v for k, v in section.items() if k != "type"}
        params = accepted_parameters(cls)
        if wired is None:
            wired = {k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs}
        check_arguments(cls, kwargs, where, wired=set(wired))
        for key, role in part_parameters(cls).items():
            value = kwargs.get(key)
            if isinstance(value, Mapping) and "type" in value:
                REGISTRIES[getattr(role, "registry_kind")].check(value, join(where, key))  # noqa: B009

    def build(
        self, section: Mapping[str, Any] | None, where: str = "", role: Optional[type] = None, **wired: Any
    ) -> Any:
        """Build a component from ``{type: NAME, ...}``.

        ``role``: the abstract class the component must fill (an attention, a sequence encoder...); another kind of
        component is refused in one line that lists the names that fill it.
        ``wired``: arguments the framework supplies (sizes of the neighbouring parts); a config may not set them.
        A parameter annotated with a role (``score: ScoreAttention``) takes a section in the config, which is built
        first, at its own path, and handed in built; it gets those of ``wired`` that it takes.
        """
        where = where or self.kind
        cls, kwargs = self.settings(section, where, role, wired)
        record_settings(where, {"type": section["type"], **kwargs})  # type: ignore[index]
        for key, part_role in part_parameters(cls).items():
            value = kwargs.get(key)
            if isinstance(value, Mapping):
                registry = REGISTRIES[getattr(part_role, "registry_kind")]  # noqa: B009  (every Role has one)
                inner = registry.get(str(value["type"]), f"{join(where, key)}.type") if "type" in value else None
                offered = {k: v for k, v in wired.items() if inner is not None and k in accepted_parameters(inner)}
                kwargs[key] = registry.build(value, join(where, key), role=part_role, **offered)
        try:
            return constructor(cls)(**kwargs, **wired)
        except ValueError as e:  # a value the component's own layers refuse (torch checks sizes of its own)
            raise ConfigError(f"{where}: {one_line(e)}") from None


_recording: contextvars.ContextVar[Optional[dict[str, Any]]] = contextvars.ContextVar("eeap_settings", default=None)


@contextlib.contextmanager
def recording_settings() -> Iterator[dict[str, Any]]:
    """Inside the block, every section built (``Registry.build``) or validated (``eeap.config.loader.validate``) leaves its
    complete settings, defaults filled in, under its path (``model.attend.score``); ``complete_config`` assembles
    them into the config as built."""
    record: dict[str, Any] = {}
    token = _recording.set(record)
    try:
        yield record
    finally:
        _recording.reset(token)


def record_settings(where: str, settings: Mapping[str, Any]) -> None:
    """Keep a section's complete settings, if a ``recording_settings`` block is open."""
    record = _recording.get()
    if record is not None:
        record[where] = {key: plain(value) for key, value in settings.items()}


def plain(value: Any) -> Any:
    """A settings value as YAML and JSON hold it: tuples as lists, nested mappings as dicts."""
    if isinstance(value, Mapping):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def complete_config(config: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with each recorded section's complete settings in place (shallower paths first, so a nested
    section's record replaces what its parent's record held for it)."""
    out = plain(config)
    for where in sorted(record, key=lambda w: w.count(".")):
        *parents, last = where.split(".")
        node = out
        for key in parents:  # a list's items by their index (``trainer.callbacks.0``)
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = {**plain(record[where])}
        else:
            node[last] = {**plain(record[where])}
    return out


def role_name(role: type, article: bool = True) -> str:
    """'an attention (alignment function)' for the Attention role (without the article if asked)."""
    name = getattr(role, "role_name", "") or role.__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}" if article else name


def role_of(cls: type, article: bool = True) -> str:
    """The most specific role a component class fills, for messages."""
    for klass in cls.__mro__:
        if vars(klass).get("role_name"):
            return role_name(klass, article)
    return f"a {getattr(cls, 'registry_kind', 'component')}"


def part_parameters(cls: type) -> dict[str, type]:
    """The parameters of ``cls`` that take one other built component: name -> the role it fills."""
    parts = {}
    params = accepted_parameters(cls)
    for key, annotation in parameter_types(cls).items():
        if (
            key in params
            and typing.get_origin(annotation) is None
            and isinstance(annotation, type)
            and issubclass(annotation, Role)
            and annotation.registry_kind
        ):
            parts[key] = annotation
    return parts


def constructor(cls: type) -> Callable[..., Any]:
    """What builds ``cls`` from its config section: its ``from_config`` classmethod (a task's builder, which
    builds its parts from their sections), else the class itself."""
    return getattr(cls, "from_config", None) or cls


def first_line(text: Optional[str]) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join((text or "").strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def registered_in(path: Path, variable: str) -> list[tuple[str, str, str]]:
    """(name, class name, docstring's first line) of each class in a source file decorated ``@<variable>.register("name")``."""
    text = path.read_text(encoding="utf-8")
    if f"{variable}.register(" not in text:
        return []
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "register"
                and isinstance(decorator.func.value, ast.Name)
                and decorator.func.value.id == variable
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
            ):
                found.append((str(decorator.args[0].value), node.name, first_line(ast.get_docstring(node))))
    return found


def accepted_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls.__init__`` (or of its ``from_config`` builder), without ``self``; a
    ``**kwargs`` passes on to the base class's."""
    params: dict[str, inspect.Parameter] = {}
    if getattr(cls, "from_config", None) is not None:
        return {
            name: p
            for name, p in inspect.signature(getattr(cls, "from_config")).parameters.items()  # noqa: B009
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        signature = inspect.signature(vars(klass)["__init__"])
        for name, p in signature.parameters.items():
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                params.setdefault(name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def parameter_types(cls: type) -> dict[str, Any]:
    """Type hints of the parameters ``accepted_parameters`` finds."""
    if dataclasses.is_dataclass(cls):
        return typing.get_type_hints(cls, include_extras=True)
    if getattr(cls, "from_config", None) is not None:
        return typing.get_type_hints(getattr(cls, "from_config"), include_extras=True)  # noqa: B009
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass is not object:
            try:
                hints.update(typing.get_type_hints(vars(klass)["__init__"], include_extras=True))
            except (NameError, TypeError):
                continue
    return hints


def join(where: str, key: str) -> str:
    """A dotted config path: ``join("model", "attend")`` is ``model.attend``."""
    return f"{where}.{key}" if where else key


def check_sections(section: Any, where: str) -> None:
    """Check, without building anything, the component sections below ``section`` whose key names a kind
    (``model.encode: {type: rnn, ...}``, and the parts inside them, ``model.attend.score``): names, unknown keys,
    value types. Keys a builder supplies (sizes of the neighbouring parts) are left to the build. For checking a
    whole config before any data is read."""
    if not isinstance(section, Mapping):
        return
    for key, value in section.items():
        if isinstance(value, Mapping) and "type" in value and key in REGISTRIES:
            REGISTRIES[key].check(value, join(where, key))
        elif isinstance(value, Mapping):
            check_sections(value, join(where, key))


def check_arguments(
    cls: type, kwargs: Mapping[str, Any], where: str, wired: AbstractSet[str] = frozenset(), label: str = ""
) -> None:
    """Raise ConfigError for keys ``cls`` does not take, keys the framework sets, values of the wrong type,
    and required keys that are missing. ``label`` names ``cls`` in messages."""
    params = accepted_parameters(cls)
    label = label or f"{getattr(cls, 'registry_kind', '')} '{getattr(cls, 'registered_name', cls.__name__)}'".strip()
    settable = [p for p in params if p not in wired]
    hints = parameter_types(cls)
    for key, value in kwargs.items():
        if key in wired:
            raise ConfigError(f"{join(where, key)}: set by the framework for {label}; remove it from the config")
        if key not in params:
            close = difflib.get_close_matches(key, settable, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{join(where, key)}: unknown key for {label}. Valid keys: {', '.join(settable) or '(none)'}.{hint}"
            )
        if key in hints and not type_matches(value, hints[key]):
            raise ConfigError(
                f"{join(where, key)}: expected {type_name(hints[key])} for {label}, got {type(value).__name__} {value!r}"
            )
    for key, p in params.items():
        if p.default is inspect.Parameter.empty and key not in kwargs and key not in wired:
            raise ConfigError(f"{join(where, key)}: required by {label} and missing")


def type_matches(value: Any, annotation: Any) -> bool:
    """Whether a config value fits a (simple) type annotation: builtins, Optional/Union, Literal, list, tuple, dict,
    and ``Annotated[number, Range(...)]``."""
    if annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, Role):  # a part: its section, or the part built
        return isinstance(value, (Mapping, annotation))
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        return type_matches(value, base) and all(value in r for r in extras if isinstance(r, Range))
    if origin in (typing.Union, types.UnionType):
        return any(type_matches(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(annotation)
        if origin is tuple and args and Ellipsis not in args:  # a fixed-length tuple: tuple[float, float]
            return len(value) == len(args) and all(type_matches(v, a) for v, a in zip(value, args))
        return all(type_matches(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping) or annotation is dict:
        return isinstance(value, Mapping)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def type_name(annotation: Any) -> str:
    """A short readable name for a type annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        return " ".join([type_name(base)] + [str(r) for r in extras if isinstance(r, Range)])
    if origin in (list, tuple, Sequence):
        args = typing.get_args(annotation)
        if origin is tuple and args and Ellipsis not in args:
            if len(set(args)) == 1:
                return f"a list of {len(args)} values, each {type_name(args[0])}"
            return "a list [" + ", ".join(type_name(a) for a in args) + "]"
        return f"a list of {type_name(args[0])}" if args else "a list"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, Role):
        return f"{role_name(annotation)} section {{type: ...}}"
    return getattr(annotation, "__name__", str(annotation))


EMBED = Registry("embed", "EMBED", ("eeap.embed",))
ENCODE = Registry("encode", "ENCODE", ("eeap.encode",))
ATTEND = Registry("attend", "ATTEND", ("eeap.attend",))
PREDICT = Registry("predict", "PREDICT", ("eeap.predict",))
TASK = Registry("task", "TASK", ("eeap.tasks",))
DATA = Registry("data", "DATA", ("eeap.tasks",))
CALLBACK = Registry("callback", "CALLBACK", ("eeap.training.callbacks",))
REGISTRIES = {registry.kind: registry for registry in (EMBED, ENCODE, ATTEND, PREDICT, TASK, DATA, CALLBACK)}
