"""The only source of time. Logic receives times; only a Clock reads the system's."""

from __future__ import annotations

import datetime as dt
import re
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved: for tests and `kvisa chat --clock`."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta


_DELTA = re.compile(r"^\+?(\d+)([dhm])$")


def parse_delta(text: str) -> dt.timedelta:
    """`+3d`, `+2h`, `+30m` as a timedelta; ValueError otherwise."""
    match = _DELTA.match(text.strip())
    if not match:
        raise ValueError(f"not a time step like +3d, +2h or +30m: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
