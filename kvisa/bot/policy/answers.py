"""Turning what a user typed (or a profile field) into an answer value, or a specific hint.

Stored answers are JSON: choice -> option id, yesno -> bool, date -> "YYYY-MM-DD",
country -> ISO 3166-1 alpha-2 code, text -> str. `answer_value()` turns them into the Python
values the policy reads.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from babel import Locale
from babel.core import get_global

from kvisa.bot.content.model import Flows, Question
from kvisa.bot.i18n import N_
from kvisa.errors import InputError

_YEAR_FIRST = re.compile(r"^(\d{1,4})\s*[-/.年\s]\s*(\d{1,2})\s*[-/.月\s]\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DAY_FIRST = re.compile(r"^\d{1,2}[-/.\s]\d{1,2}[-/.\s]\d{4}$")
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@dataclass(frozen=True)
class Invalid:
    """Why an input was refused: a msgid and its parameters."""

    hint: str
    params: Mapping[str, object] = field(default_factory=dict)


def normalize(text: str) -> str:
    """Compare texts the way people mean them: width-, case- and spacing-insensitive."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def parse_date(text: str) -> dt.date | Invalid:
    value = normalize(text)
    match = _YEAR_FIRST.match(value) or _COMPACT.match(value)
    if not match:
        if _DAY_FIRST.match(value):
            return Invalid(
                N_(
                    "Please write the year first, like 1998-04-27, "
                    "so the day and month cannot be mixed up."
                )
            )
        return Invalid(N_("Please type a date like 1998-04-27."))
    year, month, day = (int(part) for part in match.groups())
    if len(match.group(1)) != 4 or year < 1900:
        return Invalid(N_("Please check the year: write it with four digits, like 1998-04-27."))
    try:
        return dt.date(year, month, day)
    except ValueError:
        return Invalid(N_("That date does not exist. Please check the day and the month."))


@cache
def _country_names() -> dict[str, str]:
    """Normalized name, alias or code -> alpha-2 code, in English and Chinese."""
    names: dict[str, str] = {}
    for locale_name in ("en", "zh_Hans"):
        for code, name in Locale.parse(locale_name).territories.items():
            if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES:
                names[normalize(name)] = code
                names[normalize(code)] = code
    for alias, targets in get_global("territory_aliases").items():
        if len(targets) == 1 and alias.isalpha() and normalize(targets[0]) in names:
            names.setdefault(normalize(alias), targets[0])
    return names


def parse_country(text: str) -> str | Invalid:
    code = _country_names().get(normalize(text).replace(".", ""))
    if code is None:
        return Invalid(
            N_(
                "I don't know that country. Type its name in English or Chinese, "
                "or its two-letter code (for example DE)."
            )
        )
    return code


def check_date_range(question: Question, day: dt.date, today: dt.date) -> Invalid | None:
    rule = question.date
    assert rule is not None
    earliest, latest = rule.earliest.resolve(today), rule.latest.resolve(today)
    if day < earliest:
        return Invalid(rule.too_early or N_("That date is too early. Please check it."))
    if day > latest:
        return Invalid(rule.too_late or N_("That date is too late. Please check it."))
    return None


def parse_typed(question: Question, text: str, today: dt.date) -> Any | Invalid:
    """A typed reply (not an option) to `question`: the JSON answer value or a hint."""
    if question.kind == "date":
        day = parse_date(text)
        if isinstance(day, Invalid):
            return day
        return check_date_range(question, day, today) or day.isoformat()
    if question.kind == "country":
        return parse_country(text)
    if question.kind == "text":
        if len(text) > question.max_length:
            return Invalid(
                N_("Please keep it under {limit} characters."), {"limit": question.max_length}
            )
        return " ".join(text.split())
    return Invalid(N_("Please choose one of the options, by its number or its name."))


def answer_value(question: Question, value: Any) -> Any:
    """A stored JSON answer as the Python value the policy uses."""
    return dt.date.fromisoformat(value) if question.kind == "date" else value


def answer_values(flows: Flows, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Every stored answer of the interview as the value the policy uses (dates as dates)."""
    return {q.id: answer_value(q, stored[q.id]) for q in flows.questions if q.id in stored}


@cache
def _zone_names() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


_TRUE = frozenset({"true", "yes", "y", "1", "是"})
_FALSE = frozenset({"false", "no", "n", "0", "否"})


def coerce_field(question: Question, value: Any, today: dt.date) -> Any:
    """A profile field (JSON or CSV) as a stored answer value; InputError says what is expected."""
    kind = question.kind
    if kind == "yesno":
        if isinstance(value, bool):
            return value
        word = normalize(str(value))
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise InputError(question.id, "true or false", value)
    if kind == "choice":
        ids = [o.id for o in question.options]
        if isinstance(value, str) and value.strip() in ids:
            return value.strip()
        raise InputError(question.id, "one of " + ", ".join(ids), value)
    if kind == "date":
        if isinstance(value, dt.date):
            value = value.isoformat()
        if not isinstance(value, str):
            raise InputError(question.id, "a date as YYYY-MM-DD", value)
        parsed = parse_date(value)
        if isinstance(parsed, Invalid):
            raise InputError(question.id, "a real date as YYYY-MM-DD", value)
        out_of_range = check_date_range(question, parsed, today)
        if out_of_range:
            rule = question.date
            assert rule is not None
            low, high = rule.earliest.resolve(today), rule.latest.resolve(today)
            raise InputError(question.id, f"a date between {low} and {high}", value)
        return parsed.isoformat()
    if kind == "zone":
        if isinstance(value, str) and value.strip() in _zone_names():
            return value.strip()
        raise InputError(question.id, "an IANA time zone such as America/Los_Angeles", value)
    if kind == "country":
        code = parse_country(str(value)) if isinstance(value, str) else None
        if not isinstance(code, str):
            raise InputError(question.id, "an ISO 3166-1 alpha-2 country code such as DE", value)
        return code
    if not isinstance(value, str) or len(value) > question.max_length:
        raise InputError(question.id, f"text of at most {question.max_length} characters", value)
    return value
