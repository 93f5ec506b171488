"""One retention pass over the storage: tell, erase, count (see the package docstring).

A user is told at most once per silence: the notice's time is stored (only if the record is
still due a notice at that moment) before the message goes. When the message cannot go (the
user blocked the bot, WeChat's window is closed and no template is set, no channel in this
process) the notice period runs all the same: the erasure comes on the same day as for
those who were told, so nobody is kept longer for being unreachable. Erasing is conditional
too: a user who wrote meanwhile is no longer due, and is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kvisa.bot.applicants import route
from kvisa.bot.clock import Clock
from kvisa.bot.i18n import Catalogs, lang_from_hint
from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer
from kvisa.bot.retention import texts
from kvisa.bot.retention.rules import Due, Rules, due, erased_on
from kvisa.errors import BotError, RateLimited
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)
RATE_LIMIT_TRIES = 3  # sends of one notice told to wait, before it counts as not delivered


class Sender(Protocol):
    async def __call__(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None: ...


class People(Protocol):
    """What a pass needs of the engine, which it sits beside and does not import."""

    storage: Storage
    catalogs: Catalogs

    async def erase(
        self, user: UserKey, *, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> bool: ...


@dataclass
class Tally:
    """What a pass found (dry run) or did, by what was due."""

    counts: dict[Due, int] = field(default_factory=lambda: dict.fromkeys(Due, 0))
    told: int = 0  # notices delivered
    unreachable: int = 0  # notices that could not be delivered (the period runs all the same)
    erased: int = 0  # users erased (ERASE and UNCONSENTED)
    failed: int = 0  # erasures that did not complete (tried again by the next pass)


@dataclass
class Purge:
    people: People
    rules: Rules
    clock: Clock
    senders: Mapping[str, Sender] = field(default_factory=dict)
    pacers: Mapping[str, Pacer] = field(default_factory=dict)
    # Without it (`kvisa purge`, which has no channel) notices are left to `kvisa serve`.
    tell: bool = True

    async def run(self, *, dry_run: bool = False) -> Tally:
        tally, now = Tally(), self.clock.now()
        async for user, record in self.people.storage.records():
            verdict = due(record.data, now, self.rules)
            tally.counts[verdict] += 1
            if dry_run or verdict in (Due.KEEP, Due.WAIT):
                continue
            try:
                if verdict is Due.TELL:
                    if self.tell:
                        await self._tell(user, now, tally)
                elif await self.people.erase(user, when=still(verdict, now, self.rules)):
                    tally.erased += 1
            except BotError:  # this user's turn again in the next pass
                log.exception("retention: a %s user could not be handled", user.channel)
                tally.failed += 1
        return tally

    async def _tell(self, user: UserKey, now: dt.datetime, tally: Tally) -> None:
        stamped = await self.people.storage.update(user, stamp(now, self.rules))
        if stamped is None:  # wrote meanwhile, or erased
            return
        t = self.people.catalogs[lang_from_hint(stamped.get("lang"))]
        message = Outbound(texts.notice(t, self.rules.months, erased_on(now, self.rules)))
        if await self._send(user, stamped, message):
            tally.told += 1
        else:
            tally.unreachable += 1

    async def _send(self, user: UserKey, data: dict[str, Any], message: Outbound) -> bool:
        """On the applicant's channels in delivery order, until one takes it."""
        for identity in route(user, data, self.clock.now(), set(self.senders)):
            if await self._send_to(identity, message):
                return True
        return False

    async def _send_to(self, user: UserKey, message: Outbound) -> bool:
        sender = self.senders[user.channel]
        for _ in range(RATE_LIMIT_TRIES):
            pacer = self.pacers.get(user.channel)
            if pacer is not None:
                await pacer.wait()
            try:
                # A notice about the user's own data is a service message, like a reminder
                # (WeChat: its template outside the 48-hour window), not agency news.
                await sender(user, [message])
                return True
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)
            except BotError as exc:  # blocked, undeliverable, refused
                log.info("retention notice to a %s user not delivered: %s", user.channel, exc)
                return False
        return False


def still(verdict: Due, now: dt.datetime, rules: Rules) -> Callable[[dict[str, Any]], bool]:
    """Whether a record as stored at the moment of erasing is still due `verdict`."""
    return lambda data: due(data, now, rules) is verdict


def stamp(
    now: dt.datetime, rules: Rules
) -> Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """A change that records the notice, if the record is still due one; its result is the
    stamped record (None: not due any more)."""

    def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if data is None or due(data, now, rules) is not Due.TELL:
            return data, None
        stamped = {**data, "retention_notice_at": now.isoformat()}
        return stamped, stamped

    return change
