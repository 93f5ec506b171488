"""The agency's office hours on China's working-day calendar: when a person can be expected to
answer a conversation handed over to them (/human). Pure."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from kvisa.bot.content.calendar import WorkCalendar
from kvisa.bot.policy.zones import SHANGHAI

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
LOOK_AHEAD = 40  # days searched for the next working day (the longest break is about 9)


@dataclass(frozen=True)
class OfficeHours:
    """Open on China's working days (make-up Saturdays included) from `opens` to `closes`,
    Shanghai time."""

    opens: dt.time = dt.time(9, 0)
    closes: dt.time = dt.time(18, 0)

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """`09:00-18:00`; ValueError for anything else, or an empty or reversed span."""
        match = _HOURS.match(text)
        if match is None:
            raise ValueError(f"not HH:MM-HH:MM: {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        opens, closes = dt.time(h1, m1), dt.time(h2, m2)  # ValueError past 23:59
        if closes <= opens:
            raise ValueError(f"closes before it opens: {text!r}")
        return cls(opens, closes)

    def __str__(self) -> str:
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"

    def is_open(self, calendar: WorkCalendar, at: dt.datetime) -> bool:
        local = at.astimezone(SHANGHAI)
        return calendar.is_working_day(local.date()) and self.opens <= local.time() < self.closes

    def next_opening(self, calendar: WorkCalendar, at: dt.datetime) -> dt.datetime:
        """`at` itself while open, else when the office next opens (Shanghai time)."""
        if self.is_open(calendar, at):
            return at.astimezone(SHANGHAI)
        local = at.astimezone(SHANGHAI)
        day = local.date() if local.time() < self.opens else local.date() + dt.timedelta(days=1)
        for _ in range(LOOK_AHEAD):
            if calendar.is_working_day(day):
                return dt.datetime.combine(day, self.opens, SHANGHAI)
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, self.opens, SHANGHAI)

    def working_minutes_between(
        self, calendar: WorkCalendar, start: dt.datetime, end: dt.datetime
    ) -> float:
        """Minutes the office was open between two times (how long a conversation really
        waited: a night or a holiday does not count)."""
        if end <= start:
            return 0.0
        total = 0.0
        day = start.astimezone(SHANGHAI).date()
        last = end.astimezone(SHANGHAI).date()
        while day <= last:
            if calendar.is_working_day(day):
                a = max(start, dt.datetime.combine(day, self.opens, SHANGHAI))
                b = min(end, dt.datetime.combine(day, self.closes, SHANGHAI))
                if b > a:
                    total += (b - a).total_seconds() / 60
            day += dt.timedelta(days=1)
        return total
