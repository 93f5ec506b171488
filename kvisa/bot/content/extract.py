"""Babel extractor for flows/*.yaml (entry point `kvisa_flows` in babel.cfg)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from kvisa.bot.content.loader import iter_messages
from kvisa.bot.content.yamlsrc import parse_yaml


def extract_flows(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Mapping[str, Any]
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Yield (line, funcname, message, comments) for every translatable text in one file."""
    name = Path(getattr(fileobj, "name", "flows.yaml")).name
    document = parse_yaml(fileobj.read().decode("utf-8"), name)
    for message, _file, line in iter_messages(document):
        yield line, None, message, []
