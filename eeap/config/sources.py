"""Components' constructor signatures read from their source files, without importing them.

Checking a config's keys, types and ranges needs each named component's parameters and annotations; importing a
component's module for them imports torch and Lightning, seconds before the first word of an error. ``stand_in``
reads the same from the source with ``ast``: it follows the class's bases and the names its annotations use through
EEAP's own modules, imports only the light modules that annotations are written with (``typing``,
``collections.abc``, ``eeap.config.registry``), and returns a class with the real one's parameters, defaults and
annotations, which ``eeap.config.registry``'s checks take as they take the real class. A class it cannot read (a base from
another package whose ``__init__`` it would need, an annotation it cannot evaluate) gives None, and the caller
imports the real class. ``tests/test_sources.py`` checks every registered component's stand-in against the real one.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import typing
from pathlib import Path
from typing import Any, Iterator, Optional

from eeap.config.schema import Range, Role

LIGHT = (
    "typing",
    "typing_extensions",
    "collections.abc",
    "eeap.config.schema",
    "eeap.config.registry",
)  # imported for real: no torch, no Lightning
OWN = "eeap"  # modules read from their sources


class Unreadable(Exception):
    """A construct this reader does not follow; the real class is imported instead."""


@dataclasses.dataclass(frozen=True)
class SourceClass:
    """A class as its source defines it: the module and the ``class`` statement."""

    module: str
    node: ast.ClassDef


@dataclasses.dataclass(frozen=True)
class Foreign:
    """A name from a module that is not read (torch, numpy, Lightning): known by its name only."""

    name: str


def stand_in(module: str, name: str, registered_name: str, kind: str) -> Optional[type]:
    """A class with the parameters, defaults and annotations of class ``name`` of ``module`` (its ``__init__``, or
    its ``from_config`` builder), read from the sources; None if they cannot be read."""
    try:
        found = resolve(module, name)
        if not isinstance(found, SourceClass):
            return None
        return make_stand_in(found, registered_name, kind)
    except (Unreadable, SyntaxError, OSError, ImportError):
        return None


def make_stand_in(cls: SourceClass, registered_name: str, kind: str) -> type:
    """The stand-in of a class read from its source (``stand_in``); ``Unreadable`` where it cannot be made."""
    builder = find_method(cls, "from_config")
    if builder is not None:
        owner, function = builder
        parameters, hints = read_parameters(owner, function, skip_first=True)
    else:
        parameters, hints = {}, {}
        for klass in static_mro(cls):
            if isinstance(klass, Foreign):
                raise Unreadable(f"{cls.node.name}'s parameters pass on to {klass.name}")
            init = method(klass, "__init__")
            if init is None:
                continue
            own, own_hints = read_parameters(klass, init, skip_first=True)
            for key, parameter in own.items():
                if key not in parameters:
                    parameters[key], hints[key] = parameter, own_hints.get(key)
            if init.args.kwarg is None:
                break
    hints = {key: hint for key, hint in hints.items() if hint is not None}
    namespace: dict[str, Any] = {
        "__module__": cls.module,
        "__doc__": ast.get_docstring(cls.node),
        "registered_name": registered_name,
        "registry_kind": kind,
        "stand_in_for": f"{cls.module}.{cls.node.name}",
    }
    # every key keyword-only: a signature of several classes' parameters (a mixin's keyword-only keys between a
    # class's and its base's) need not be one Python could write, and config keys are given by name
    keys = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters.values()]
    if builder is not None:
        namespace["from_config"] = staticmethod(signature_function(keys, hints))
    else:
        self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        namespace["__init__"] = signature_function([self, *keys], hints)
    return type(cls.node.name, (), namespace)


def signature_function(parameters: list[inspect.Parameter], hints: dict[str, Any]) -> Any:
    """A function that only carries a signature and its annotations (``inspect.signature``, ``get_type_hints``)."""

    def carrier(*args: Any, **kwargs: Any) -> None:
        raise TypeError("a stand-in read from the sources: import the real class to build it")

    carrier.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    carrier.__annotations__ = dict(hints)
    return carrier


def read_parameters(
    klass: SourceClass, function: ast.FunctionDef, skip_first: bool
) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """A ``def``'s keyword-capable parameters (positional-or-keyword and keyword-only) with their defaults and
    evaluated annotations."""
    args = function.args
    positional = args.posonlyargs + args.args
    defaults: list[Optional[ast.expr]] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults))[len(args.posonlyargs) :]
    if skip_first and args.args and not args.posonlyargs:
        pairs = pairs[1:]
    kinds: list[Any] = [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(pairs)
    pairs += list(zip(args.kwonlyargs, args.kw_defaults))
    kinds += [inspect.Parameter.KEYWORD_ONLY] * len(args.kwonlyargs)
    parameters, hints = {}, {}
    for (arg, default), kind in zip(pairs, kinds):
        value = inspect.Parameter.empty if default is None else evaluate(klass.module, default)
        parameters[arg.arg] = inspect.Parameter(arg.arg, kind, default=value)
        if arg.annotation is not None:
            hints[arg.arg] = evaluate_annotation(klass.module, arg.annotation)
    return parameters, hints


def evaluate_annotation(module: str, node: ast.expr) -> Any:
    """An annotation's value; a quoted one (``"Optional[int]"``) is read as the expression it quotes."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    return annotation(evaluate(module, node))


def annotation(value: Any) -> Any:
    """An evaluated annotation as ``typing.get_type_hints`` gives it: a role class for a class that fills a role,
    a named placeholder class for any other class, ``NoneType`` for None."""
    if value is None:
        return type(None)
    if isinstance(value, SourceClass):
        return role_stand_in(value) or placeholder(value.node.name)
    if isinstance(value, Foreign):
        return placeholder(value.name)
    return value


@functools.cache
def placeholder(name: str) -> type:
    """A class standing for a class that is not read (a tensor, an info object): config values are never one."""
    return type(name, (), {"__module__": __name__})


@functools.cache
def role_stand_in(cls: SourceClass) -> Optional[type]:
    """A ``Role`` subclass with the registry kind and role name of ``cls``, if ``cls`` fills a role."""
    mro = static_mro(cls)
    if Role not in mro:
        return None
    attributes = {"registry_kind": "", "role_name": ""}
    for key in attributes:
        for klass in mro:
            if isinstance(klass, SourceClass) and (value := class_constant(klass, key)) is not None:
                attributes[key] = value
                break
    return type(cls.node.name, (Role,), {"__module__": cls.module, **attributes})


def class_constant(klass: SourceClass, key: str) -> Optional[str]:
    """The string a class body assigns to ``key`` (``role_name = "score attention"``), if any."""
    for statement in klass.node.body:
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        for target in targets:
            value = getattr(statement, "value", None)
            if isinstance(target, ast.Name) and target.id == key and isinstance(value, ast.Constant):
                return str(value.value)
    return None


def static_mro(cls: SourceClass) -> list[Any]:
    """The class and its bases in method resolution order (C3), each a ``SourceClass``, a ``Foreign`` base, or a
    real class from a light module (``Role``)."""

    def linearize(klass: Any) -> list[Any]:
        if not isinstance(klass, SourceClass):
            return [klass]
        bases = [evaluate(klass.module, base) for base in klass.node.bases]
        sequences = [linearize(base) for base in bases] + [list(bases)]
        result = [klass]
        while any(sequences):
            for sequence in sequences:
                head = sequence[0] if sequence else None
                if head is not None and not any(head in s[1:] for s in sequences):
                    break
            else:
                raise Unreadable(f"no consistent method order for {klass.node.name}")
            result.append(head)
            sequences = [s[1:] if s and s[0] == head else s for s in sequences]
        return result

    return linearize(cls)


def method(klass: Any, name: str) -> Optional[ast.FunctionDef]:
    """The ``def name`` in a class's own body, if any."""
    if not isinstance(klass, SourceClass):
        return None
    for statement in klass.node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            return statement
    return None


def find_method(cls: SourceClass, name: str) -> Optional[tuple[SourceClass, ast.FunctionDef]]:
    """The class that defines ``name`` first in the method resolution order, and its ``def``."""
    for klass in static_mro(cls):
        function = method(klass, name)
        if function is not None:
            return klass, function
    return None


@functools.cache
def own_modules() -> dict[str, Path]:
    """Every module of EEAP (``eeap`` and ``eeap.tasks``) by dotted name: its source file, found without importing
    any package (a package's ``__init__`` may import Lightning)."""
    return dict(package_modules((OWN, f"{OWN}.tasks")))


def package_modules(packages: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(dotted module name, source path) of every module below ``packages``, found without importing them."""
    found = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for path in sorted(Path(folder).rglob("*.py")):
                parts = path.relative_to(folder).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found.append((".".join((package, *parts)), path))
    return found


def source_path(module: str) -> Optional[Path]:
    """The source file of one of EEAP's modules; None for any other module."""
    return own_modules().get(module)


@functools.cache
def source(module: str) -> Optional[ast.Module]:
    """A module's parsed source; None where EEAP has no such module."""
    path = source_path(module)
    return ast.parse(path.read_text(encoding="utf-8")) if path is not None else None


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A module's top-level statements, those in ``if`` and ``try`` blocks (``if TYPE_CHECKING:``) included."""
    for statement in body:
        if isinstance(statement, ast.If):
            yield from statements(statement.body + statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from statements(statement.body + statement.orelse + statement.finalbody)
        else:
            yield statement


@functools.cache
def resolve(module: str, name: str) -> Any:
    """What ``name`` is at the top level of ``module``: a ``SourceClass``, a value, a real object of a light
    module, or ``Foreign``."""
    tree = None if module in LIGHT else source(module)
    if tree is None:
        return real(module, name)
    for statement in reversed(list(statements(tree.body))):  # the last binding wins
        if isinstance(statement, ast.ClassDef) and statement.name == name:
            return SourceClass(module, statement)
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in statement.targets
        ):
            return evaluate(module, statement.value)
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            if statement.target.id == name and statement.value is not None:
                return evaluate(module, statement.value)
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if (alias.asname or alias.name) == name:
                    return imported(absolute(module, statement), alias.name)
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    target = alias.name if alias.asname else alias.name.split(".")[0]
                    return real_module(target) if target in LIGHT else Foreign(name)
    if hasattr(builtins, name):
        return getattr(builtins, name)
    raise Unreadable(f"{module} does not define {name}")


def absolute(module: str, statement: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative imports resolved against ``module``."""
    if not statement.level:
        return statement.module or ""
    package = module.split(".")
    is_package = (source_path(module) or Path()).name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[: len(base) - statement.level + 1]
    return ".".join(base + ([statement.module] if statement.module else []))


def imported(module: str, name: str) -> Any:
    """``from module import name``: read from its source (EEAP's own), imported (light), or ``Foreign``."""
    if module == "__future__":
        raise Unreadable("not a value")
    if f"{module}.{name}" in own_modules():
        return Foreign(name)  # a submodule, used as a namespace
    return resolve(module, name)


def real(module: str, name: str) -> Any:
    """An attribute of a light module, imported; a name from any other module is ``Foreign``."""
    if module in LIGHT:
        try:
            return getattr(real_module(module), name)
        except AttributeError:
            raise Unreadable(f"{module} has no {name}") from None
    return Foreign(name)


def real_module(module: str) -> Any:
    """A light module, imported."""
    return importlib.import_module(module)


def evaluate(module: str, node: ast.expr) -> Any:
    """The value of an annotation or default expression in ``module``: literals, names, attributes, subscripts
    (``Optional[int]``), ``X | None`` and calls of ``Range``; anything else is ``Unreadable``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return resolve(module, node.id)
    if isinstance(node, ast.Attribute):
        owner = evaluate(module, node.value)
        if isinstance(owner, Foreign):
            return Foreign(node.attr)
        if isinstance(owner, SourceClass):
            raise Unreadable(f"an attribute of class {owner.node.name}")
        try:
            return getattr(owner, node.attr)
        except AttributeError:
            raise Unreadable(f"no attribute {node.attr}") from None
    if isinstance(node, ast.Subscript):
        owner = evaluate(module, node.value)
        if isinstance(owner, (Foreign, SourceClass)):
            raise Unreadable("a subscripted class that is not read")
        index = evaluate(module, node.slice)
        if owner is not typing.Literal:  # Literal's arguments are values; every other's are types
            index = tuple(annotation(i) for i in index) if isinstance(index, tuple) else annotation(index)
        return owner[index]
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [evaluate(module, element) for element in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise Unreadable("a ** in a dict")
        return {evaluate(module, k): evaluate(module, v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return typing.Union[annotation(evaluate(module, node.left)), annotation(evaluate(module, node.right))]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = evaluate(module, node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, ast.Call):
        if evaluate(module, node.func) is Range:
            args = [evaluate(module, a) for a in node.args]
            return Range(*args, **{k.arg: evaluate(module, k.value) for k in node.keywords if k.arg})
    raise Unreadable(f"an expression this reader does not evaluate: {ast.dump(node)[:80]}")
