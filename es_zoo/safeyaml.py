"""YAML for files a user (or anyone) hands to es-zoo: bounded in size, nesting and alias expansion.

PyYAML's ``safe_load`` builds no objects from tags, but it still accepts a few hundred bytes of nested
aliases (a "billion laughs") whose *expanded* value is astronomically large: loading is cheap because
aliases are shared references, but anything that walks or prints the value (a schema check, an error
message) then runs for minutes and gigabytes. PyYAML has no such limit of its own, so this module
composes the node graph with PyYAML's own safe loader, counts what the document would expand to without
expanding it (node sizes memoised per node), and refuses a document over the limit before constructing
any Python object. Deep nesting that would exhaust Python's recursion is refused the same way.

Example:
    >>> load_yaml("a: &x [1, 2]\\nb: *x\\n", "recipe.yaml")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 4 * 1024 * 1024  # a recipe is a few KB; a folder's recipe.yaml tens of KB
MAX_VALUES = 200_000  # scalars + collections after alias expansion
MAX_DEPTH = 100


class YamlLimitError(ValueError):
    """A YAML document that is not valid, too large, too deep, or expands past the limits."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], depth: int) -> int:
    if depth > MAX_DEPTH:
        raise YamlLimitError(f"nested more than {MAX_DEPTH} levels deep")
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            raise YamlLimitError("a recursive alias (a value that contains itself)")
        return memo[key]
    memo[key] = -1
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, depth + 1) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    memo[key] = size
    if size > MAX_VALUES:
        raise YamlLimitError(f"expands to more than {MAX_VALUES:,} values (through YAML aliases); write the "
                             "values out instead")
    return size


def load_yaml(text: str | bytes, where: str) -> Any:
    """Parse one YAML document with PyYAML's safe loader, within the module's limits. Raises
    :class:`YamlLimitError` with ``where:LINE: what is wrong`` (never the expanded value)."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise YamlLimitError(f"{where}: {len(text):,} bytes; expected a YAML file under {MAX_BYTES:,} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlLimitError(f"{where}: not UTF-8 text (byte {exc.start:,}); expected a YAML file") from None
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"{where}: {len(text):,} characters; expected a YAML file under {MAX_BYTES:,} bytes")
    if "\x00" in text:
        raise YamlLimitError(f"{where}: a NUL character at offset {text.index(chr(0)):,}; expected YAML text")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, 0)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise YamlLimitError(f"{where}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except YamlLimitError as exc:
        raise YamlLimitError(f"{where}: {exc}") from None
    except RecursionError:
        raise YamlLimitError(f"{where}: nested too deeply; expected at most {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was: error messages stay one
    readable line whatever a user's file held."""
    try:
        text = repr(value)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"
