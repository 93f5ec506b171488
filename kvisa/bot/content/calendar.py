"""China's official working-day calendar, for visa and permit deadlines.

Offices work Monday to Friday except statutory holidays, and some weekend days are make-up
working days (调休). Both come from the State Council's yearly notice, published each November
or December for the next year. The `holidays` package carries the notices; flows/calendar.yaml
adds a newly published year (or corrects one) without a release, and wins for the years it lists.

For a year with no known notice the package still answers, by rule (a festival on a weekend
moves to the next weekday, no make-up days), so anything depending on such a year is an
ESTIMATE. Dates stay plain and official-ness is asked once for the whole window:

    due = calendar.add_working_days(applied, 5)
    estimated = not calendar.span_is_official(applied, due)

One check covers a chain (the 3..5 working-day visa decision: span from applied to the latest).
Days from 25 December also need the next year's notice, which may still move them.

Counting conventions:
- add_working_days(start, n), n >= 1: the n-th working day strictly after `start`, whether or
  not `start` is a working day (the day after is day one). n == 0: `start` if it is a working
  day, else the next working day, so n == 0 and n == 1 agree when `start` is a day off.
- working_days_between(a, b): working days in (a, b], negative when b < a; hence
  working_days_between(s, add_working_days(s, n)) == n for a working day `s`.
- last_working_day_on_or_before(d): `d` itself when it is a working day.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import holidays

from kvisa.bot.content.yamlsrc import Node, load_yaml
from kvisa.errors import FlowError, InputError

# The package has no "published" flag: for a year without a notice it quietly applies its
# weekend rule and labels nothing as estimated. Its China data holds the notices for 2001-2026
# (checked in holidays 0.109, the newest release; 2026 arrived in 0.85). Raise this only after
# checking a newer release's data; until then a new year goes in flows/calendar.yaml.
_FIRST_NOTICE, _LAST_NOTICE = 2001, 2026
# A notice may reach back into the last days of the year before (2001-12-29 was worked for the
# 2002 New Year break), so those days stay provisional until the next notice is known.
_TAIL_FROM = 25
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Language = Literal["en", "zh"]


@dataclass(frozen=True)
class Notice:
    """One year's schedule: days off with (English, Chinese) names, and weekend days worked."""

    year: int
    official: bool
    days_off: Mapping[date, tuple[str, str]]
    workdays: frozenset[date]


@dataclass(frozen=True)
class _Year:
    working: tuple[int, ...]  # sorted ordinals, so counting and stepping are bisects
    days_off: Mapping[date, tuple[str, str]]


@cache
def _cross_year_workdays() -> frozenset[date]:
    # Built by the package's constructor from every notice, whatever `years` asks for.
    return frozenset(holidays.country_holidays("CN", years=[]).weekend_workdays)


@cache
def _package_notice(year: int) -> Notice:
    # PUBLIC only: the HALF_DAY category (Women's Day, Youth Day...) does not close offices.
    english = holidays.country_holidays("CN", years=year, language="en_US")
    chinese = holidays.country_holidays("CN", years=year, language="zh_CN")
    cross = _cross_year_workdays()
    workdays = {d for d in english.weekend_workdays if d.year == year and d not in cross}
    workdays |= {d for d in cross if d.year == year - 1}  # always announced by the next notice
    days_off = {d: (name, chinese.get(d, name)) for d, name in english.items()}
    return Notice(year, _FIRST_NOTICE <= year <= _LAST_NOTICE, days_off, frozenset(workdays))


class WorkCalendar:
    """Working days under China's official calendar; overrides replace the package per year."""

    def __init__(self, overrides: Iterable[Notice] = ()) -> None:
        self._overrides = {notice.year: notice for notice in overrides}
        self._years: dict[int, _Year] = {}

    def same_schedule(self, other: WorkCalendar) -> bool:
        """Whether `other` has the same holiday notices of flows/calendar.yaml."""
        return self._overrides == other._overrides

    def schedule_key(self) -> str:
        """The holiday notices of flows/calendar.yaml as text (equal for the same notices)."""
        return repr(sorted(self._overrides.items()))

    def _notice(self, year: int) -> Notice:
        override = self._overrides.get(year)
        return override if override is not None else _package_notice(year)

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is None:
            days_off: dict[date, tuple[str, str]] = {}
            worked: set[date] = set()
            for notice in (self._notice(year), self._notice(year + 1)):
                days_off.update((d, n) for d, n in notice.days_off.items() if d.year == year)
                worked.update(d for d in notice.workdays if d.year == year)
            first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
            days = map(date.fromordinal, range(first, last + 1))
            working = tuple(
                d.toordinal()
                for d in days
                if (d in worked if d.weekday() >= 5 else d not in days_off)
            )
            cached = self._years[year] = _Year(working, days_off)
        return cached

    def is_working_day(self, day: date) -> bool:
        working = self._year(day.year).working
        i = bisect_left(working, day.toordinal())
        return i < len(working) and working[i] == day.toordinal()

    def is_official(self, year: int) -> bool:
        """Whether the State Council schedule for `year` is known (package or override)."""
        return self._notice(year).official

    def span_is_official(self, a: date, b: date) -> bool:
        """Whether every day from a to b (either order) comes from a published schedule."""
        a, b = min(a, b), max(a, b)
        last = b.year + 1 if (b.month, b.day) >= (12, _TAIL_FROM) else b.year
        return all(self.is_official(year) for year in range(a.year, last + 1))

    def holiday_name(self, day: date, language: Language = "en") -> str | None:
        """The name of the holiday closing offices on `day`; None on plain weekends too."""
        names = self._year(day.year).days_off.get(day)
        if names is None or self.is_working_day(day):
            return None
        return names[0] if language == "en" else names[1]

    def add_working_days(self, start: date, n: int) -> date:
        if n < 0:
            raise InputError("n", "a number of working days >= 0", n)
        year = start.year
        working = self._year(year).working
        if n == 0:
            i = bisect_left(working, start.toordinal())
        else:
            i = bisect_right(working, start.toordinal()) + n - 1
        while i >= len(working):
            i -= len(working)
            year += 1
            working = self._year(year).working
        return date.fromordinal(working[i])

    def last_working_day_on_or_before(self, day: date) -> date:
        year = day.year
        working = self._year(year).working
        i = bisect_right(working, day.toordinal()) - 1
        while i < 0:
            year -= 1
            working = self._year(year).working
            i = len(working) - 1
        return date.fromordinal(working[i])

    def working_days_between(self, a: date, b: date) -> int:
        if b < a:
            return -self.working_days_between(b, a)
        whole_years = sum(len(self._year(year).working) for year in range(a.year, b.year))
        return whole_years + self._rank(b) - self._rank(a)

    def _rank(self, day: date) -> int:
        """Working days in day's year up to and including `day`."""
        return bisect_right(self._year(day.year).working, day.toordinal())


def add_weekdays(start: date, n: int) -> date:
    """Like WorkCalendar.add_working_days, counting Monday to Friday only: for an office abroad
    (an embassy or consulate), which keeps neither China's holidays nor its make-up Saturdays."""
    if n < 0:
        raise InputError("n", "a number of working days >= 0", n)
    day = start if n == 0 else start + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    for _ in range(max(0, n - 1)):
        day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
    return day


def load_calendar(flows_dir: Path) -> WorkCalendar:
    """The calendar with flows/calendar.yaml applied; any problem is a FlowError with its line."""
    path = flows_dir / "calendar.yaml"
    document = load_yaml(path, "flows/calendar.yaml")
    if document is None:
        return WorkCalendar()
    if not isinstance(document, Node):
        raise FlowError("flows/calendar.yaml", 1, "expected a mapping with a `years:` list")
    _check_keys(document, required={"years"})
    entries = document["years"] or []
    if not isinstance(entries, list):
        raise document.error("`years` must be a list", "years")
    notices: dict[int, Notice] = {}
    for entry in entries:
        if not isinstance(entry, Node):
            raise document.error("each year must be a mapping (year, official, holidays)", "years")
        notice = _parse_notice(entry)
        if notice.year in notices:
            raise entry.error(f"year {notice.year} is listed twice", "year")
        notices[notice.year] = notice
    return WorkCalendar(notices.values())


def _parse_notice(entry: Node) -> Notice:
    _check_keys(entry, required={"year", "official", "holidays"}, optional={"notice"})
    year, official, listed = entry["year"], entry["official"], entry["holidays"]
    if type(year) is not int:
        raise entry.error("`year` must be a year like 2027", "year")
    if not isinstance(official, bool):
        raise entry.error("`official` must be true or false", "official")
    if "notice" in entry and not isinstance(entry["notice"], str):
        raise entry.error("`notice` must be text (the notice's title or address)", "notice")
    if not isinstance(listed, list):
        raise entry.error("`holidays` must be a list", "holidays")
    days_off: dict[date, tuple[str, str]] = {}
    worked: dict[date, Node] = {}
    for holiday in listed:
        if not isinstance(holiday, Node):
            raise entry.error("each holiday must be a mapping (en, zh, from, to)", "holidays")
        _check_keys(holiday, required={"en", "zh", "from", "to"}, optional={"workdays"})
        names = (_text(holiday, "en"), _text(holiday, "zh"))
        start = _as_date(holiday, "from", holiday["from"], year)
        end = _as_date(holiday, "to", holiday["to"], year)
        if end < start:
            raise holiday.error(f"`to` ({end}) is before `from` ({start})", "to")
        for ordinal in range(start.toordinal(), end.toordinal() + 1):
            if (day := date.fromordinal(ordinal)) in days_off:
                raise holiday.error(f"{day} is already in another holiday", "from")
            days_off[day] = names
        raw = holiday.get("workdays", [])
        if not isinstance(raw, list):
            raise holiday.error("`workdays` must be a list of dates", "workdays")
        for value in raw:
            day = _as_date(holiday, "workdays", value, year)
            if day.weekday() < 5:
                raise holiday.error(f"make-up day {day} is a {day:%A}, not a weekend", "workdays")
            worked[day] = holiday
    for day, holiday in worked.items():
        if day in days_off:
            raise holiday.error(f"make-up day {day} falls inside a holiday", "workdays")
    return Notice(year, official, days_off, frozenset(worked))


def _check_keys(node: Node, required: set[str], optional: Iterable[str] = ()) -> None:
    allowed = required | set(optional)
    for key in node:
        if key not in allowed:
            raise node.error(f"unknown key {key!r}; expected one of {sorted(allowed)}", key)
    if missing := sorted(required - node.keys()):
        raise node.error(f"missing {missing[0]!r}")


def _text(node: Node, key: str) -> str:
    value = node[key]
    if not isinstance(value, str) or not value.strip():
        raise node.error(f"`{key}` must be a non-empty name", key)
    return value.strip()


def _as_date(node: Node, key: str, value: Any, year: int) -> date:
    day = None
    if type(value) is date:  # not datetime, a date subclass: a time of day means a typo
        day = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        with suppress(ValueError):
            day = date.fromisoformat(value.strip())
    if day is None:
        raise node.error(f"`{key}`: {value!r} is not a date like 2027-02-05", key)
    # The New Year break of `year` may start in the last days of December before it.
    if day.year != year and not (day.year == year - 1 and day >= date(day.year, 12, _TAIL_FROM)):
        raise node.error(f"{day} does not belong to year {year}", key)
    return day


def schedule_due(calendar: WorkCalendar, today: date) -> int | None:
    """The next year whose official holiday schedule is missing, from 1 November (the State
    Council usually publishes it in October or November); None before then or once it is in."""
    if (today.month, today.day) < (11, 1) or calendar.is_official(today.year + 1):
        return None
    return today.year + 1
