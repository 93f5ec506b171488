"""What is due for one stored record, by its dates alone (pure: the time comes in)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kvisa.bot.applicants import is_forward
from kvisa.bot.policy.zones import shanghai_today
from kvisa.bot.session import PRE_CONSENT
from kvisa.bot.settings import Settings


class Due(StrEnum):
    KEEP = "keep"
    TELL = "tell"  # silent for the retention time: to be told
    WAIT = "wait"  # told, and the notice period is not over
    ERASE = "erase"  # told at least the notice period ago, silent since
    UNCONSENTED = "unconsented"  # never consented, last written over PRE_CONSENT ago


@dataclass(frozen=True)
class Rules:
    months: int = 18
    notice: dt.timedelta = dt.timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(settings.retention_months, dt.timedelta(days=settings.retention_notice_days))


def moment(value: Any) -> dt.datetime | None:
    """A stored ISO time, aware (a naive one is UTC); None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def months_before(now: dt.datetime, months: int) -> dt.datetime:
    """The same time `months` calendar months earlier (the 31st becomes the month's last day)."""
    month_index = now.year * 12 + now.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def last_heard(data: Mapping[str, Any]) -> dt.datetime | None:
    """When the user last wrote (or, for records that never stored it, consented)."""
    return moment(data.get("last_seen")) or moment(data.get("consent_at"))


def due(data: Mapping[str, Any], now: dt.datetime, rules: Rules) -> Due:
    if is_forward(data):  # a linked identity's pointer: erased with its applicant
        return Due.KEEP
    if not data.get("consent_at"):
        seen = moment(data.get("last_seen"))
        return Due.UNCONSENTED if seen is None or now - seen >= PRE_CONSENT else Due.KEEP
    heard = last_heard(data)
    if heard is None or heard > months_before(now, rules.months):
        return Due.KEEP  # an unreadable date is never a reason to erase
    told = moment(data.get("retention_notice_at"))
    if told is None or told < heard:
        return Due.TELL
    return Due.ERASE if shanghai_today(now) >= erased_on(told, rules) else Due.WAIT


def erased_on(told: dt.datetime, rules: Rules) -> dt.date:
    """The day (in Shanghai) a user told at `told` is erased unless they write: the notice
    names it, and the first pass of that day erases."""
    try:
        return shanghai_today(told + rules.notice)
    except OverflowError:  # a stored time near the end of the calendar: never
        return dt.date.max
