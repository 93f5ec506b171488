"""From 1 November, until next year's holiday schedule is in flows/calendar.yaml (a content
version like any other): a daily reminder to the admins.

Three ways, so that it is seen: a warning in the log, once a day; the gauge
`kvisa_calendar_schedule_missing` (1 while missing; on /metrics, independent of /readyz, which
must not fail for it); and a message to the chat admins (KVISA_ADMINS) once a day from 09:00
Shanghai time, sent by one replica only (a claim per day), never at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial

from kvisa.bot.clock import Clock
from kvisa.bot.content.calendar import schedule_due
from kvisa.bot.content.versions import ContentSource
from kvisa.bot.i18n import N_, Catalogs, Text, bilingual
from kvisa.bot.messages import Outbound
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage import Storage

log = logging.getLogger(__name__)

LOOK_EVERY = 3600.0  # seconds
REMIND_FROM = 9  # o'clock, Shanghai time: the agency's morning
Sender = Callable[[UserKey, Sequence[Outbound]], Awaitable[None]]
REMINDER = N_(
    "China's official holiday schedule for {year} is not in our content yet. When the State "
    "Council publishes it, add it to flows/calendar.yaml and publish a new content version "
    "(kvisa content publish): dates in {year} are estimates until then."
)


def reminder_text(year: int, t: Text) -> str:
    return t(REMINDER, year=year)


class CalendarWatch:
    """Looks once an hour; reminds at most once a day (the first look of the day)."""

    def __init__(
        self,
        storage: Storage,
        content: ContentSource,
        clock: Clock,
        catalogs: Catalogs,
        admins: Iterable[UserKey],
        senders: Mapping[str, Sender],
    ) -> None:
        self.storage, self.content, self.clock, self.catalogs = storage, content, clock, catalogs
        self.admins, self.senders = sorted(admins, key=str), senders
        self.missing: int | None = None  # the year whose schedule is missing (the gauge)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="calendar-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        remind = False  # not at start-up: a restart is no moment for a daily message
        while True:
            try:
                await self.look(remind=remind)
            except Exception:  # tried again at the next look
                log.exception("could not check next year's holiday schedule")
            await asyncio.sleep(LOOK_EVERY)
            remind = True

    async def look(self, *, remind: bool = True) -> int:
        """Check the current content (the gauge); remind if due today, from 09:00 Shanghai
        time, and not done yet. How many admins were sent the reminder."""
        now = self.clock.now().astimezone(SHANGHAI)
        flows = await self.content.current()
        self.missing = schedule_due(flows.calendar, now.date())
        if self.missing is None or not remind or now.hour < REMIND_FROM:
            return 0
        today = now.date()
        if not await self.storage.claim(f"cv:calendar-reminder:{today.isoformat()}", 2 * 86400):
            return 0  # reminded today already (by this replica or another)
        log.warning(
            "the official holiday schedule for %d is missing from flows/calendar.yaml", self.missing
        )
        told = 0
        text = bilingual(self.catalogs, "en", partial(reminder_text, self.missing))
        for admin in self.admins:
            sender = self.senders.get(admin.channel)
            if sender is None:
                continue
            with contextlib.suppress(BotError):
                await sender(admin, [Outbound(text)])
                told += 1
        return told
