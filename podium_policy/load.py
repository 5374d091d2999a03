"""Policy YAML, read strictly: every duplicate key is a problem naming both lines (YAML would
silently keep the last), and each mapping and sequence remembers the line of its keys and
items (``lineno``) so every later problem names its line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from podium_policy.schema import PolicyError, Problem


class _Map(dict):
    """A YAML mapping that remembers the line of each key."""

    lines: dict


class _Seq(list):
    """A YAML sequence that remembers the line of each item."""

    lines: list


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (naming both lines) and keeps line numbers.
    ``load_yaml`` reports every duplicate with its key path first, then loads with
    ``allow_duplicates`` so the rest of the file is still checked."""

    allow_duplicates = False


def _construct_map(loader: StrictLoader, node: MappingNode):
    data = _Map()
    data.lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark) from None
        line = key_node.start_mark.line + 1
        if key in data.lines and not loader.allow_duplicates:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first on line {data.lines[key]})",
                key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


def _construct_seq(loader: StrictLoader, node: SequenceNode):
    data = _Seq()
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item, deep=True) for item in node.value)


StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
StrictLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(text: str, source: str | None = None) -> tuple[Any, list[Problem]]:
    """(document, duplicate-key problems); PolicyError when the text is not YAML."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        problems: list[Problem] = []
        if node is not None:
            _duplicates(node, "", problems, source, set())
        loader.allow_duplicates = True
        doc = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(Problem("", f"not valid YAML: {_yaml_reason(exc)}", line,
                                  source)) from None
    finally:
        loader.dispose()
    return doc, problems


def _yaml_reason(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = "; ".join(p for p in parts if p)
    return text or str(exc).splitlines()[0]


def _duplicates(node: Node, path: str, out: list[Problem], source: str | None,
                seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias used twice is checked once
        return
    seen_nodes.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = f"{path}.{key}" if path else str(key)
            line = key_node.start_mark.line + 1
            if key is not None:
                ident = (key_node.tag, key)
                if ident in first:
                    out.append(Problem(where, f"duplicate key (first on line {first[ident]}); "
                                              "remove one (YAML would silently keep the "
                                              "last)", line, source))
                else:
                    first[ident] = line
            _duplicates(value_node, where, out, source, seen_nodes)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, f"{path}[{i}]", out, source, seen_nodes)


def lineno(doc: Any, key: Any = None) -> int | None:
    """The line of ``key`` in a mapping or sequence ``load_yaml`` built (None for a plain
    one)."""
    lines = getattr(doc, "lines", None)
    if lines is None:
        return None
    if key is None:
        return None
    if isinstance(lines, dict):
        return lines.get(key)
    return lines[key] if isinstance(key, int) and 0 <= key < len(lines) else None
