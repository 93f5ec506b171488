"""Sending what is due, exactly once, through the user's channel.

The ledger is the user's own record (`reminders_sent`: Reminder.key -> how and when), so it
is erased with everything else on /delete. One delivery goes:

1. claim `reminder:<key>` in the storage for `lease` seconds (first caller wins: two
   processes, or a scheduler and the console, never send the same reminder at once);
2. re-read the user's record: skip if the key is already in the ledger, or the user paused
   reminders, blocked the bot, or was erased meanwhile;
3. send;
4. write the key into the ledger (compare-and-set on the user's record), then release.

A process killed before 3 leaves the claim to expire: the reminder goes out `lease` later,
not lost. Killed after 4: nothing to redo. Killed between 3 and 4 (while the platform's
answer is on its way back, a few milliseconds) or during 3, the platform may or may not have
the message: after `lease` it is sent again. No platform we use accepts an idempotency key,
so this window cannot be closed; we choose a rare duplicate over a lost deadline reminder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from kvisa import metrics
from kvisa.bot.applicants import route
from kvisa.bot.clock import Clock
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import ContentSource
from kvisa.bot.i18n import Catalogs
from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer, pacers
from kvisa.bot.policy.reminders import Delivery, Outlook, Reminder, active, outlook
from kvisa.bot.reminders import texts
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.errors import Blocked, ChannelError, RateLimited
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)

Sender = Callable[[UserKey, Sequence[Outbound]], Awaitable[None]]
Outcome = Literal["sent", "skipped", "busy", "failed", "blocked"]
# When to look at a user's reminders again, and the reminder expected then (for the job).
Next = tuple[dt.datetime, Reminder | None] | None


class Deliverer:
    """Sends a user's due reminders and says when to come back. Used by the scheduler's jobs
    and, without a scheduler, by the console."""

    def __init__(
        self,
        flows: Flows,
        catalogs: Catalogs,
        storage: Storage,
        clock: Clock,
        senders: Mapping[str, Sender],
        settings: ReminderSettings,
        on_blocked: Callable[[UserKey], Awaitable[None]] | None = None,
        shared_pacers: Mapping[str, Pacer] | None = None,
    ) -> None:
        self.flows, self.catalogs, self.storage, self.clock = flows, catalogs, storage, clock
        self.senders = senders
        self.settings = settings
        self.on_blocked = on_blocked
        # The process's pacers when given (shared with broadcasts and interactive replies).
        self.pacers = {**pacers(settings.rates), **(shared_pacers or {})}
        self._slots = asyncio.Semaphore(settings.concurrency)
        # Published content versions (kvisa serve): what is due follows the current version,
        # so no reminder for a date a new version moved fires after the change.
        self.content: ContentSource | None = None

    async def data(self, user: UserKey) -> dict[str, Any] | None:
        record = await self.storage.get(user)
        return record.data if record else None

    async def current_flows(self) -> Flows:
        """The flows reminders follow now: the current published version when there is one."""
        if self.content is not None:
            self.flows = await self.content.current()
        return self.flows

    async def outlook(self, user: UserKey, now: dt.datetime | None = None) -> Outlook:
        """What is due for `user` now (or at `now`) and when to look again."""
        flows = await self.current_flows()
        return outlook(flows, str(user), await self.data(user), now or self.clock.now())

    async def deliver(self, user: UserKey) -> Next:
        """Send what is due now; the time to look again (None: nothing planned)."""
        async with self._slots:  # bounded: each delivery holds Redis connections while it runs
            return await self._deliver(user)

    async def _deliver(self, user: UserKey) -> Next:
        now = self.clock.now()
        look = await self.outlook(user, now)
        if not look.deliveries:
            return (look.next_at, look.next_reminder) if look.next_at else None
        retry = now + dt.timedelta(seconds=self.settings.retry)
        for delivery in look.deliveries:
            outcome = await self._deliver_one(user, delivery, look, now)
            if outcome == "blocked":
                return None  # rescheduled when the user writes again
        look = await self.outlook(user, now)
        if look.deliveries:  # some did not go out: try again later
            return retry, look.deliveries[0].reminder
        return (look.next_at, look.next_reminder) if look.next_at else None

    async def _deliver_one(
        self, user: UserKey, delivery: Delivery, look: Outlook, now: dt.datetime
    ) -> Outcome:
        """One reminder, once per applicant: on the first of their channels that takes it
        (bot/applicants.py's order), the next one when a channel refuses (blocked, WeChat
        outside its window without a template, failing); recorded with the one it went on."""
        claim = f"reminder:{delivery.key}"
        if not await self.storage.claim(claim, self.settings.lease):
            return "busy"
        release = True
        try:
            data = await self.data(user)
            if not active(data) or delivery.key in data.get("reminders_sent", {}):  # type: ignore[union-attr]
                return "skipped"
            assert data is not None
            order = route(user, data, now, set(self.senders))
            if not order:
                log.warning("no channel of this applicant in this process: reminders wait")
                return "failed"
            metrics.reminders_due.inc()
            message = texts.message(
                self.flows,
                self.catalogs,
                data.get("lang", "en"),
                delivery,
                look.timeline,
                look.zone,
                now,
            )
            refused: list[str] = []
            for identity in order:
                try:
                    async with asyncio.timeout(self.settings.lease / 2):
                        await self._send(self.senders[identity.channel], identity, message)
                except Blocked:
                    refused.append("blocked")
                    if self.on_blocked is not None:
                        await self.on_blocked(identity)
                    continue
                except TimeoutError:
                    release = False  # it may still arrive: keep others off until the claim expires
                    log.warning("a reminder timed out", extra={"user": identity})
                    metrics.reminders_failed.labels(identity.channel).inc()
                    return "failed"
                except ChannelError as exc:
                    refused.append("failed")
                    log.warning("a reminder failed: %s", exc, extra={"user": identity})
                    metrics.reminders_failed.labels(identity.channel).inc()
                    continue
                metrics.reminders_sent.labels(identity.channel).inc()
                if delivery.how != "on_time":  # late, or the deadline passed without one
                    metrics.reminders_late.inc()
                release = False  # sent: should recording fail, the claim still guards it
                await self.record(user, delivery, delivery.how, now, identity.channel)
                release = True
                return "sent"
            if refused and all(r == "blocked" for r in refused):
                await self.record(user, delivery, "dropped", now)
                return "blocked"
            return "failed"
        finally:
            if release:
                await self.storage.release(claim)

    async def _send(self, sender: Sender, user: UserKey, message: Outbound) -> None:
        pacer = self.pacers.get(user.channel)
        while True:
            if pacer is not None:
                await pacer.wait()
            try:
                return await sender(user, [message])
            except RateLimited as exc:
                log.info("%s asks to slow down for %ss", user.channel, exc.retry_after)
                if pacer is not None:
                    pacer.hold(exc.retry_after)
                else:
                    await asyncio.sleep(exc.retry_after)

    async def record(
        self, user: UserKey, delivery: Delivery, how: str, now: dt.datetime, channel: str = ""
    ) -> None:
        """Write the delivery (and the older reminders it settles) into the user's ledger:
        how, when, and the one channel it went out on."""
        stamp = now.isoformat()
        entries = {key: f"covered {stamp}" for key in delivery.covers} | {
            delivery.key: f"{how} {stamp} {channel}".rstrip()
        }

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
            if data is None:
                return None, None  # erased meanwhile: nothing to keep
            return {**data, "reminders_sent": {**data.get("reminders_sent", {}), **entries}}, None

        await self.storage.update(user, change)
