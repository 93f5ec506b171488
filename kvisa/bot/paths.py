"""Where the shipped data lives: inside the wheel (kvisa/_data) or in a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

_DISTRIBUTION = Path(__file__).resolve().parent.parent  # the `kvisa` package directory


def _data(name: str) -> Path:
    installed = _DISTRIBUTION / "_data" / name
    if installed.is_dir():
        return installed
    return _DISTRIBUTION.parent / name  # a source checkout: flows/ and locales/ at its root


def flows_dir() -> Path:
    """flows/: KVISA_FLOWS_DIR when set (the agency's edited copy), else the shipped one."""
    override = os.environ.get("KVISA_FLOWS_DIR")
    return Path(override) if override else _data("flows")


def locales_dir() -> Path:
    return _data("locales")
