"""The engine: runs a turn against stored state, atomically, one turn per user at a time."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from kvisa.bot.content.model import Flows
from kvisa.bot.engine.turn import OptionsMemo, Turn
from kvisa.bot.engine.types import Inbound, Outbound, materialize
from kvisa.bot.errors import BotError
from kvisa.bot.i18n import Catalogs, lang_from_hint
from kvisa.storage.base import Once, Storage, UserKey

log = logging.getLogger(__name__)

# Told after a turn changed a user's stored state: the user, the state before and after (None:
# none stored, erased). The engine stays pure; this is how the reminder service learns that
# dates may have moved.
Listener = Callable[[UserKey, dict[str, Any] | None, dict[str, Any] | None], Awaitable[None]]
# Consulted before the turn: replies when the message is its business (an admin's broadcast
# commands and drafts), None to let the applicant's turn handle it.
Interceptor = Callable[[Inbound], Awaitable[list[Outbound] | None]]


class Engine:
    """Channel-neutral: takes an Inbound, returns the Outbound replies."""

    def __init__(
        self, flows: Flows, catalogs: Catalogs, storage: Storage, listener: Listener | None = None
    ) -> None:
        self.flows = flows
        self.catalogs = catalogs
        self.storage = storage
        self.listener = listener
        self.interceptor: Interceptor | None = None
        # Keeps one user's turns in order within this process; the storage's version check
        # keeps them consistent across processes.
        self._locks: weakref.WeakValueDictionary[UserKey, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._options: OptionsMemo = {}  # translated once for every user (see Turn)

    def _lock(self, user: UserKey) -> asyncio.Lock:
        lock = self._locks.get(user)
        if lock is None:
            lock = self._locks[user] = asyncio.Lock()
        return lock

    def turn(
        self, data: dict[str, Any] | None, inbound: Inbound
    ) -> tuple[dict[str, Any] | None, list[Outbound]]:
        """The pure part: state and message in, new state and replies out."""
        return Turn(self.flows, self.catalogs, data, inbound, self._options).run()

    async def mark_inactive(self, user: UserKey) -> None:
        """The user blocked the bot or unsubscribed: no pushes until they write again."""
        await self.storage.update(user, lambda data: (data and {**data, "inactive": True}, None))

    async def handle(self, inbound: Inbound, *, once: Once | None = None) -> list[Outbound]:
        """The replies to `inbound`, its state change committed. With `once` (a channel's
        message id), a message delivered twice is applied once: the claim is taken in the same
        atomic step as the write, and AlreadyClaimed raised, nothing changed, if it was taken."""
        async with self._lock(inbound.user):
            if self.interceptor is not None:
                try:
                    intercepted = await self.interceptor(inbound)
                except BotError:
                    log.exception("admin command failed for a %s user", inbound.user.channel)
                    return [self._apology(inbound)]
                if intercepted is not None:
                    return intercepted
            # The last run of the change is the one committed (update may retry it).
            committed: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []

            def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[Outbound]]:
                new, replies = self.turn(data, inbound)
                committed[:] = [(data, new)]
                return new, replies

            try:
                replies = await self.storage.update(inbound.user, change, once=once)
            except BotError:
                log.exception("turn failed for a %s user", inbound.user.channel)
                return [self._apology(inbound)]
            if self.listener is not None and committed and committed[0][0] != committed[0][1]:
                await self._tell(inbound.user, *committed[0])
            return [await materialize(reply) for reply in replies]

    def _apology(self, inbound: Inbound) -> Outbound:
        t = self.catalogs[lang_from_hint(inbound.lang_hint)]
        return Outbound(t("Sorry, something went wrong on our side. Please try again in a minute."))

    async def _tell(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        assert self.listener is not None
        try:
            await self.listener(user, before, after)
        except Exception:  # a listener's failure must never cost the user their reply
            log.exception("engine listener failed for a %s user", user.channel)
