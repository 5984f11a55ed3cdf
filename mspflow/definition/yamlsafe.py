"""A strict, line-aware YAML reader for definition and evidence files.

PyYAML's safe loader turns ``on``/``off``/``yes``/``no`` into booleans, ``1.10``
into the float ``1.1`` and silently keeps the last of two equal keys. For files
where ``3.1`` is a task id and ``no`` may be a value, all three are mistakes
waiting to happen, so this loader:

* resolves booleans only from ``true``/``false``;
* never resolves floats (``1.1`` stays the string ``"1.1"``);
* reports a duplicate key as a problem instead of overwriting;
* remembers the line of every mapping, sequence and key (1-based);
* bounds what a small file can cost: nesting depth (:data:`MAX_DEPTH`), the
  length of one value (:data:`MAX_SCALAR`) and the size of the data once
  aliases are expanded (:data:`MAX_NODES`), so that an "alias bomb" of a few
  hundred bytes is refused before it is built, not after it filled memory;
* can refuse anchors, aliases and explicit tags altogether (evidence files,
  whose rows are plain values: there a ``*ref`` or a ``!tag`` is a mistake or
  an attack, never a convenience).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from mspflow.errors import DefinitionError, Problem
from mspflow.inputs import shown

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_SCALAR", "LDict", "LList", "load_yaml"]

#: Mappings and lists nested deeper than this are refused (definitions use < 10).
MAX_DEPTH = 64
#: Nodes in the document with every alias expanded (the bundled definition has a few thousand).
MAX_NODES = 200_000
#: Characters in one value.
MAX_SCALAR = 65_536


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


class _Refused(Exception):
    """The document breaks a bound; reading stops at ``line``."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _StrictLoader(yaml.SafeLoader):
    problems: list[Problem]
    filename: str
    plain: bool  # refuse anchors, aliases and tags
    max_scalar: int
    depth: int
    weights: dict[int, int]  # id(node) -> its size with aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if self.plain:
            if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
                raise _Refused(
                    line,
                    "anchors and aliases (&name, *name) are not read here; write each value out",
                )
            tag = getattr(event, "tag", None)
            if tag not in (None, "!"):
                raise _Refused(
                    line, f"the tag {shown(tag)} is not read here; write the plain value"
                )
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > self.max_scalar:
            raise _Refused(
                line,
                f"a value of {len(event.value):,} characters; at most {self.max_scalar:,} are read",
            )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels; flatten the data")
        try:
            node: Any = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(event, yaml.AliasEvent):  # the node it names, read before
            if id(node) not in self.weights:  # ... or still being read: a cycle
                raise _Refused(line, "an alias refers to the node that contains it")
        elif id(node) not in self.weights:
            if isinstance(node, yaml.ScalarNode):
                children: list[Any] = []
            elif isinstance(node, yaml.SequenceNode):
                children = node.value
            else:
                children = [child for pair in node.value for child in pair]
            weight = 1
            for child in children:
                weight += self.weights[id(child)]
            if weight > MAX_NODES:
                raise _Refused(
                    line,
                    f"with its aliases expanded the data has more than {MAX_NODES:,} "
                    "values; write it without repeated aliases",
                )
            self.weights[id(node)] = weight
        return node


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


def load_yaml(
    text: str, filename: str, *, plain: bool = False, max_scalar: int = MAX_SCALAR
) -> tuple[Any, list[Problem]]:
    """Parse ``text``; return the data and the problems found while reading.

    A syntax error or a broken bound is raised as :class:`DefinitionError`
    (nothing else can be checked); duplicate and non-string keys are returned as
    problems so that the caller can report them together with its own.
    ``plain`` refuses anchors, aliases and explicit tags.
    """
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # reading a str checks its characters at once
        loader.problems = []
        loader.filename = filename
        loader.plain = plain
        loader.max_scalar = max_scalar
        loader.depth = 0
        loader.weights = {}
        data = loader.get_single_data()
    except _Refused as exc:
        raise DefinitionError([Problem(filename, exc.line, exc.message)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise DefinitionError(
            [
                Problem(
                    filename,
                    line,
                    f"the character {shown(chr(exc.character))} is not allowed in YAML; remove it",
                )
            ]
        ) from None
    except RecursionError:
        raise DefinitionError(
            [Problem(filename, 0, f"nested deeper than {MAX_DEPTH} levels; flatten the data")]
        ) from None
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
        if loader is not None:
            loader.dispose()
    return data, loader.problems
