"""Where the shipped data lives: inside the wheel (kvisa/_data) or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_DISTRIBUTION = Path(__file__).resolve().parent.parent  # the `kvisa` package directory


def _data(name: str) -> Path:
    installed = _DISTRIBUTION / "_data" / name
    if installed.is_dir():
        return installed
    return _DISTRIBUTION.parent / name  # a source checkout: flows/ and locales/ at its root


def flows_dir() -> Path:
    """The shipped flows/ (KVISA_FLOWS_DIR, read by bot/settings.py, may point elsewhere)."""
    return _data("flows")


def locales_dir() -> Path:
    return _data("locales")
