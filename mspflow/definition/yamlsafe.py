"""A strict, line-aware YAML reader for definition and evidence files.

PyYAML's safe loader turns ``on``/``off``/``yes``/``no`` into booleans, ``1.10``
into the float ``1.1`` and silently keeps the last of two equal keys. For files
where ``3.1`` is a task id and ``no`` may be a value, all three are mistakes
waiting to happen, so this loader:

* resolves booleans only from ``true``/``false``;
* never resolves floats (``1.1`` stays the string ``"1.1"``);
* reports a duplicate key as a problem instead of overwriting;
* remembers the line of every mapping, sequence and key (1-based).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from mspflow.errors import DefinitionError, Problem

__all__ = ["LDict", "LList", "load_yaml"]


class LDict(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]
    dropped: dict[str, Any]  # values removed by validation, kept for messages

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _StrictLoader(yaml.SafeLoader):
    problems: list[Problem]
    filename: str


_StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    result = LDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            loader.problems.append(
                Problem(
                    loader.filename, line, f"key {key!r} must be a name, not a {type(key).__name__}"
                )
            )
            key = str(key)
        if key in result:
            loader.problems.append(
                Problem(
                    loader.filename,
                    line,
                    f"duplicate key '{key}' (first on line {result.key_lines[key]}); keep one",
                )
            )
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _StrictLoader, node: yaml.SequenceNode) -> LList:
    result = LList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; return the data and the problems found while reading.

    A syntax error is raised as :class:`DefinitionError` (nothing else can be
    checked); duplicate and non-string keys are returned as problems so that the
    caller can report them together with its own.
    """
    loader = _StrictLoader(text)
    loader.problems = []
    loader.filename = filename
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = exc.problem or exc.context or "invalid YAML"
        raise DefinitionError(
            [Problem(filename, line, f"YAML syntax: {what}; fix the indentation or quoting")]
        ) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(filename, 0, f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, loader.problems
