"""Strict conversion of parsed YAML into dataclasses: the one validation mechanism of recipes, the
catalogue, task definitions and fine-tuning hyperparameters.

:func:`from_mapping` turns ``data`` into the dataclass ``cls``: an unknown key (with "did you mean"), a
missing key, a wrong type, a value outside a ``Literal`` and a failed check of the dataclass's own
``__post_init__`` are each one error line ``where: key.path: message``. A ``__post_init__`` that raises
:class:`Mismatch` names the key its check is about (a path relative to that dataclass); a plain
``ValueError`` is reported at the dataclass's own path. A field whose YAML key is not a Python name (``from``)
says so with ``field(metadata={"key": "from"})``.

Why hand-written rather than pydantic v2 (installed only with the ``demo`` extra, as a gradio dependency;
checked with 2.14): with ``ConfigDict(extra="forbid", strict=True)`` pydantic names the location of an
unknown key or a wrong type, but says no "did you mean", spreads one error over several lines, and its
strict mode refuses the numeric strings that ``--set learning_rate=2e-3`` gives (YAML 1.1), while its lax
mode accepts in files what recipes refuse (``"3"`` and ``3.0`` for an integer, ``1`` and ``"yes"`` for
true). Matching this converter would take error rewriting, per-use modes and a discriminator over the
families' model sections registered at run time: no less code, and a new core dependency.

This module imports nothing from es-zoo but :mod:`es_zoo.errors`, so every layer may use it.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Corpus:
    ...     source: str = "embedded"
    >>> from_mapping(Corpus, {"sorce": "x"}, "my.yaml")
    Traceback (most recent call last):
    ...
    es_zoo.errors.RecipeError: my.yaml: sorce: unknown key (did you mean 'source'?); expected one of: source
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, Mapping, Union

from es_zoo.errors import RecipeError

_MAX_INT = 2**53  # beyond this no setting means anything (and float conversions lose precision)


class Mismatch(ValueError):
    """``data`` does not fit the schema at ``path`` (dotted keys, ``[i]`` list items; "" is the top).

    Raised by the converter, and by a dataclass's ``__post_init__`` to name the key (relative to the
    dataclass) that one of its checks is about."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message

    def line(self, where: str) -> str:
        """The one-line error: ``where: path: message``."""
        return f"{where}: {self.path or '<top>'}: {self.message}"


def join(path: str, sub: str) -> str:
    """A key path below ``path``: ``join("a", "b") == "a.b"``, ``join("a", "[0]") == "a[0]"``."""
    if not path or not sub:
        return path or sub
    return f"{path}{sub}" if sub.startswith("[") else f"{path}.{sub}"


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (as :func:`es_zoo.safeyaml.short`, which this module may
    not import): an error stays one readable line whatever the file held."""
    try:
        text = repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def yaml_key(f: dataclasses.Field) -> str:
    """The key a dataclass field has in YAML (its name unless ``metadata={"key": ...}`` says otherwise)."""
    return f.metadata.get("key", f.name)


def type_name(tp: Any) -> str:
    """What a value of schema type ``tp`` looks like, for messages."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {type_name(typing.get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if hasattr(tp, "__schema_name__"):
        return tp.__schema_name__
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    if hasattr(tp, "__schema_choices__"):  # a tagged union whose members are known at run time
        return _convert_tagged(tp.__schema_choices__(), value, path)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        if len(choices) > 1 and all(dataclasses.is_dataclass(a) for a in choices):
            return _convert_tagged(choices, value, path)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except Mismatch as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise Mismatch(path, f"expected {type_name(tp)}, got {shown(value)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise Mismatch(path, f"expected {type_name(tp)}, got {shown(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise Mismatch(path, f"expected {type_name(tp)}, got {shown(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise Mismatch(path, f"expected {type_name(tp)}, got {shown(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _convert(item, v, join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return to_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise Mismatch(path, f"expected true or false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Mismatch(path, f"expected an integer, got {shown(value)}")
        if abs(value) > _MAX_INT:
            raise Mismatch(path, f"expected an integer of at most 2^53 in size, got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Mismatch(path, f"expected a number, got {shown(value)}")
        if not math.isfinite(float(value)) or abs(value) > 1e300:
            raise Mismatch(path, f"expected a finite number, got {shown(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise Mismatch(path, f"expected a string, got {shown(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported schema type {tp!r}")  # a bug in the schema, not in the file


def _convert_tagged(choices: list, value: Any, path: str) -> Any:
    """A union of dataclasses told apart by their first field (``kind`` or ``architecture``), a Literal."""
    tag = dataclasses.fields(choices[0])[0].name
    by_tag = {typing.get_args(typing.get_type_hints(c)[tag])[0]: c for c in choices}
    if not isinstance(value, dict):
        raise Mismatch(path, f"expected a mapping with '{tag}', got {shown(value)}")
    if tag not in value:
        raise Mismatch(join(path, tag), f"missing required key; expected one of {', '.join(map(repr, by_tag))}")
    if value[tag] not in by_tag:
        raise Mismatch(join(path, tag), f"expected one of {', '.join(map(repr, by_tag))}, got {shown(value[tag])}")
    return to_dataclass(by_tag[value[tag]], value, path)


def to_dataclass(cls: type, data: Any, path: str = "") -> Any:
    """``data`` as the dataclass ``cls``; :class:`Mismatch` (with the key path below ``path``) otherwise."""
    if not isinstance(data, dict):
        raise Mismatch(path, f"expected {type_name(cls)}, got {shown(data)}")
    hints = typing.get_type_hints(cls)
    fields = {yaml_key(f): f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise Mismatch(join(path, str(key)), f"unknown key{hint}; expected one of: {', '.join(fields)}")
    kwargs = {}
    for key, f in fields.items():
        sub = join(path, key)
        if key in data:
            kwargs[f.name] = _convert(hints[f.name], data[key], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise Mismatch(sub, f"missing required key; expected {type_name(hints[f.name])}")
    try:
        return cls(**kwargs)
    except Mismatch as exc:  # a check of the dataclass that names its key
        raise Mismatch(join(path, exc.path), exc.message) from None
    except ValueError as exc:
        raise Mismatch(path, str(exc)) from None


def from_mapping(cls: type, data: Any, where: str, error: type = RecipeError) -> Any:
    """``data`` (parsed YAML) as the dataclass ``cls``, checked strictly: unknown keys (with "did you mean"),
    missing keys, wrong types and the dataclass's own checks are one ``error`` naming ``where`` and the key
    path."""
    try:
        return to_dataclass(cls, data, "")
    except Mismatch as exc:
        raise error(exc.line(where)) from None


def read_strings(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line values (``--set KEY=VALUE``) for the top-level fields of ``cls``, as the field types
    want them: YAML 1.1 reads ``2e-3`` as a string, so a string that is a number is read as one for a number
    field (as recipe overrides read ``1e-4``), and ``true``/``false``/``yes``/``no``/``1``/``0`` for a
    true-or-false field. Anything else is left as it is, for the converter to judge."""
    hints = typing.get_type_hints(cls)
    by_key = {yaml_key(f): f.name for f in dataclasses.fields(cls)}
    out = dict(data)
    for key, value in data.items():
        tp = hints.get(by_key.get(key, ""))
        if tp is None:
            continue
        if typing.get_origin(tp) in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
        if tp is bool and (isinstance(value, str) or (type(value) is int and value in (0, 1))):
            word = str(value).strip().lower()
            if word in ("true", "yes", "1", "false", "no", "0"):
                out[key] = word in ("true", "yes", "1")
        elif tp in (int, float) and isinstance(value, str):
            try:
                out[key] = int(value) if tp is int else float(value)
            except ValueError:
                pass
    return out
