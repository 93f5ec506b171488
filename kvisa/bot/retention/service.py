"""The retention pass of `kvisa serve`: once a day, in the leader only.

Leadership comes from a coordinator of its own (the Redis lock `<prefix>:retention:leader`;
without Redis the process leads). A pass starts only if the claim `retention:pass` is free and
holds it for most of a day, so restarts and a change of leader do not walk the storage again
the same day; each step of a pass is conditional on the record as stored (see purge.py), so a
pass cut short by a change of leader and run again tells nobody twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from redis.asyncio import Redis

from kvisa.bot.clock import Clock
from kvisa.bot.coordinator import Coordinator, LocalCoordinator, RedisCoordinator
from kvisa.bot.loops import pause, raise_if_cancelled
from kvisa.bot.pacing import Pacer
from kvisa.bot.retention.purge import People, Purge, Sender, Tally
from kvisa.bot.retention.rules import Rules
from kvisa.storage.redis import connect

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
PASS_CLAIM = "retention:pass"


class RetentionService:
    def __init__(
        self,
        people: People,
        rules: Rules,
        clock: Clock,
        senders: Mapping[str, Sender],
        pacers: Mapping[str, Pacer] | None = None,
        *,
        redis_url: str | None,
        prefix: str = "kvisa",
        interval: float = DAY,
        leader_ttl: float = 15.0,
    ) -> None:
        self.purge = Purge(people, rules, clock, senders, pacers or {})
        self.storage = people.storage
        self.interval = interval
        self._client: Redis | None = None
        self.coordinator: Coordinator
        if redis_url:
            self._client = connect(redis_url)
            self.coordinator = RedisCoordinator(self._client, prefix, leader_ttl, name="retention")
        else:
            self.coordinator = LocalCoordinator()
        self._task: asyncio.Task[None] | None = None
        self.passes: list[Tally] = []  # what this process's passes did (the last few)

    async def start(self) -> None:
        await self.coordinator.start(self._elected, self._deposed)

    async def stop(self) -> None:
        await self.coordinator.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _elected(self) -> None:
        self._task = asyncio.create_task(self._daily(), name="retention")

    async def _deposed(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _daily(self) -> None:
        while True:
            raise_if_cancelled()
            try:
                if await self.storage.claim(PASS_CLAIM, self.interval * 0.9):
                    tally = await self.purge.run()
                    self.passes = [*self.passes[-9:], tally]
                    log.info(
                        "retention pass: %d told, %d not reachable, %d erased, %d failed",
                        tally.told,
                        tally.unreachable,
                        tally.erased,
                        tally.failed,
                    )
            except Exception:  # tried again at the next interval
                raise_if_cancelled()
                log.exception("the retention pass failed")
            await pause(self.interval)
