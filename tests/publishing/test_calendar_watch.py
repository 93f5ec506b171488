"""From 1 November, while next year's holiday schedule is missing, the admins are reminded
once a day; adding the schedule (a content version) ends it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.clock import FixedClock
from kvisa.bot.content.calendar import WorkCalendar, schedule_due
from kvisa.bot.content.versions import ContentSource
from kvisa.bot.messages import Outbound
from kvisa.bot.publishing.calendar_watch import REMINDER, CalendarWatch
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.publishing.conftest import CATALOGS, publish
from tests.support import content

ADMINS = [UserKey("telegram", "1"), UserKey("wechat", "oAdmin")]
SCHEDULE_2027 = (
    "years:\n"
    "  - year: 2027\n"
    "    official: true\n"
    '    notice: "Holiday notice for 2027 (a test fixture)"\n'
    "    holidays:\n"
    "      - en: New Year's Day\n"
    "        zh: 元旦\n"
    "        from: 2027-01-01\n"
    "        to: 2027-01-01\n"
    "        workdays: []\n"
)


class Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[UserKey, str]] = []

    async def send(self, user: UserKey, messages: Sequence[Outbound]) -> None:
        self.got += [(user, m.text) for m in messages]


def watch(storage: Storage, day: dt.date, inbox: Inbox, source: ContentSource) -> CalendarWatch:
    clock = FixedClock(dt.datetime.combine(day, dt.time(2), dt.UTC))  # 10:00 in Shanghai
    senders = {"telegram": inbox.send, "wechat": inbox.send}
    return CalendarWatch(storage, source, clock, CATALOGS, ADMINS, senders)


async def test_admins_are_reminded_once_a_day_from_november_until_the_schedule_is_in(
    storage: Storage, flows_copy: Path
) -> None:
    flows, _ = content()
    source = ContentSource(storage, flows, interval=0.0)
    inbox = Inbox()

    october = await watch(storage, dt.date(2026, 10, 31), inbox, source).look()
    first = await watch(storage, dt.date(2026, 11, 1), inbox, source).look()
    again = await watch(storage, dt.date(2026, 11, 1), inbox, source).look()  # another replica
    next_day = watch(storage, dt.date(2026, 11, 2), inbox, source)
    told = await next_day.look()

    assert (october, first, again, told) == (0, 2, 0, 2)
    early = CalendarWatch(
        storage,
        source,
        FixedClock(dt.datetime(2026, 11, 3, 0, 30, tzinfo=dt.UTC)),  # 08:30 in Shanghai
        CATALOGS,
        ADMINS,
        {"telegram": inbox.send},
    )
    assert await early.look() == 0 and early.missing == 2027  # the gauge, no message yet
    assert next_day.missing == 2027
    assert {user for user, _ in inbox.got} == set(ADMINS)
    assert all(CATALOGS["zh"](REMINDER, year=2027) in text for _, text in inbox.got)

    (flows_copy / "calendar.yaml").write_text(SCHEDULE_2027, encoding="utf-8")
    await publish(storage, flows_copy)
    after = watch(storage, dt.date(2026, 11, 3), inbox, source)
    assert await after.look() == 0 and after.missing is None


@given(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)))
def test_the_schedule_is_due_from_the_first_of_november_while_next_year_is_unknown(
    day: dt.date,
) -> None:
    due = schedule_due(WorkCalendar(), day)

    assert due == (2027 if day >= dt.date(2026, 11, 1) else None)
