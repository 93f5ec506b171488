"""YAML loading that remembers where every mapping and list item came from.

Mappings load as `Node` (a dict) with `.file`, `.line` and `.key_lines`, so validation errors
can name the file and line the agency has to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kvisa.errors import FlowError


class Node(dict[str, Any]):
    """A YAML mapping that knows its file and the line of each of its keys."""

    file: str
    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def error(self, problem: str, key: str | None = None) -> FlowError:
        return FlowError(self.file, self.line_of(key) if key else self.line, problem)


class _Loader(yaml.SafeLoader):
    file_name = "<flows>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    result = Node()
    result.file = loader.file_name
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise FlowError(loader.file_name, key_node.start_mark.line + 1, "keys must be text")
        if key in result:
            raise FlowError(
                loader.file_name, key_node.start_mark.line + 1, f"duplicate key {key!r}"
            )
        try:
            result[key] = loader.construct_object(value_node, deep=True)
        except ValueError as exc:  # e.g. an unquoted impossible date such as 2027-02-30
            raise FlowError(
                loader.file_name, value_node.start_mark.line + 1, f"{key}: {exc}"
            ) from exc
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path, display_name: str | None = None) -> Any:
    """Parse one YAML file; a syntax error becomes a FlowError with its line."""
    name = display_name or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError(name, None, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise FlowError(name, None, "not UTF-8 text") from exc
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> Any:
    """Parse YAML text that came from the file `name`."""
    loader_cls = type("_FileLoader", (_Loader,), {"file_name": name})
    try:
        return yaml.load(text, Loader=loader_cls)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FlowError(name, line, f"YAML syntax: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise FlowError(name, None, f"YAML syntax: {exc}") from exc
