"""Time zones of a country, grouped so that a user only chooses when the choice matters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.core import get_global
from babel.dates import get_timezone_location

# Deadlines are dates in Shanghai: the one definition of its zone, and of "today" there.
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Two dates that tell standard time from daylight-saving time in both hemispheres.
_PROBES = (dt.datetime(2026, 1, 15, 12), dt.datetime(2026, 7, 15, 12))


@dataclass(frozen=True)
class ZoneChoice:
    """Zones of one country that keep the same clock all year; `zone` stands for all of them."""

    zone: str
    members: tuple[str, ...]

    def label(self, locale: Locale) -> str:
        winter = ZoneInfo(self.zone).utcoffset(_PROBES[0])
        hours = (winter.total_seconds() if winter else 0) / 3600
        offset = f"UTC{'+' if hours >= 0 else '−'}{abs(hours):g}"
        cities = [
            get_timezone_location(z, locale=locale, return_city=True) for z in self.members[:3]
        ]
        separator = "、" if locale.language == "zh" else ", "
        return f"{offset} · {separator.join(dict.fromkeys(cities))}"


@cache
def zone_choices(country: str) -> tuple[ZoneChoice, ...]:
    """The distinct clocks of a country (ISO alpha-2), west to east; one for most countries."""
    groups: dict[tuple[dt.timedelta | None, ...], list[str]] = {}
    for name in get_global("territory_zones").get(country, ()):
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        groups.setdefault(tuple(zone.utcoffset(p) for p in _PROBES), []).append(name)
    ordered = sorted(
        groups.items(), key=lambda item: [o.total_seconds() if o else 0 for o in item[0]]
    )
    return tuple(ZoneChoice(names[0], tuple(names)) for _, names in ordered)


def shanghai_today(at: dt.datetime) -> dt.date:
    """The date in Shanghai at the moment `at`."""
    return at.astimezone(SHANGHAI).date()


def home_zone(country: str | None, chosen: str | None) -> str:
    """The zone to use for someone living in `country`: their choice, or the only clock there."""
    choices = zone_choices(country) if country else ()
    if chosen and any(chosen in c.members for c in choices):
        return chosen
    return choices[0].zone if len(choices) == 1 else (chosen or SHANGHAI.key)
