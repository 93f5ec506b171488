"""The engine: runs a turn against stored state, atomically, one turn per user at a time."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import Histogram

from kvisa import metrics
from kvisa.bot.content.model import Flows
from kvisa.bot.engine.choice import cleaned
from kvisa.bot.engine.handlers import REGISTRY
from kvisa.bot.engine.turn import Shared, Turn
from kvisa.bot.erasure import Erasure, Holding, OwnedValues
from kvisa.bot.i18n import Catalogs, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound, materialize
from kvisa.bot.ordering import KeyedLocks
from kvisa.bot.session import lifetime
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage.base import Once, Storage

log = logging.getLogger(__name__)

# Told after a turn changed a user's stored state: the user, the state before and after (None:
# none stored, erased). The engine stays pure; this is how the reminder service learns that
# dates may have moved.
Listener = Callable[[UserKey, dict[str, Any] | None, dict[str, Any] | None], Awaitable[None]]
# Consulted before the turn: replies when the message is its business (an admin's broadcast
# commands and drafts), None to let the applicant's turn handle it.
Interceptor = Callable[[Inbound], Awaitable[list[Outbound] | None]]


def apology(t: Text) -> str:
    """What a user is told when their message could not be handled on our side."""
    return t("Sorry, something went wrong on our side. Please try again in a minute.")


def commands() -> Sequence[tuple[str, str]]:
    """(name, summary msgid) of the commands users are shown: /help, the platforms' lists."""
    return REGISTRY.listed()


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
        # What else is kept about a user, erased with their record (see bot/erasure.py; the
        # process adds the holdings of its parts, bot/holdings.py).
        self.erasure = Erasure([Holding("owned values", OwnedValues(storage).erase)])
        # Keeps one user's turns in order within this process; the storage's version check
        # keeps them consistent across processes.
        self._locks: KeyedLocks[UserKey] = KeyedLocks()
        self._shared: Shared = {}  # built once for every user (Conversation.shared)

    @staticmethod
    @functools.cache
    def _turn_seconds(channel: str) -> Histogram:
        return metrics.turn_seconds.labels(channel)  # looked up once per channel, not per turn

    def turn(
        self, data: dict[str, Any] | None, inbound: Inbound
    ) -> tuple[dict[str, Any] | None, list[Outbound]]:
        """The pure part: state and message in, new state and replies out."""
        return Turn(self.flows, self.catalogs, data, inbound, self._shared).run()

    async def erase(
        self, user: UserKey, *, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> bool:
        """Erase everything kept about `user` (record, holdings, reminder job), outside a turn
        (the retention purge). With `when`, only if it holds for the record as stored at that
        moment (the user did not write meanwhile); False when nothing was erased for that
        reason. ErasureIncomplete when a holding failed (the record is gone by then)."""
        async with self._locks(user):

            def change(
                data: dict[str, Any] | None,
            ) -> tuple[dict[str, Any] | None, tuple[dict[str, Any] | None, bool]]:
                if data is not None and when is not None and not when(data):
                    return data, (data, False)
                return None, (data, True)

            before, erased = await self.storage.update(user, change)
            if not erased:
                return False
            if self.listener is not None and before is not None:
                await self._tell(user, before, None)
            await self.erasure.erase(user)
            return True

    async def mark_inactive(self, user: UserKey) -> None:
        """The user blocked the bot or unsubscribed: no pushes until they write again."""
        await self.storage.update(user, lambda data: (data and {**data, "inactive": True}, None))

    async def handle(self, inbound: Inbound, *, once: Once | None = None) -> list[Outbound]:
        """The replies to `inbound`, its state change committed. With `once` (a channel's
        message id), a message delivered twice is applied once: the claim is taken in the same
        atomic step as the write, and AlreadyClaimed raised, nothing changed, if it was taken."""
        inbound = cleaned(inbound)  # an admin's texts too, before the interceptor sees them
        async with self._locks(inbound.user):
            if self.interceptor is not None:
                try:
                    intercepted = await self.interceptor(inbound)
                except BotError:
                    log.exception("admin command failed for a %s user", inbound.user.channel)
                    return [self._apology(inbound)]
                if intercepted is not None:
                    return intercepted
            # The last run of the change is the one committed (update may retry it).
            committed: list[tuple[dict[str, Any] | None, dict[str, Any] | None, bool]] = []

            def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[Outbound]]:
                turn = Turn(self.flows, self.catalogs, data, inbound, self._shared)
                new, replies = turn.run()
                committed[:] = [(data, new, turn.erased)]
                return new, replies

            try:
                # Until consent the record expires (session.PRE_CONSENT); consent makes it last.
                with self._turn_seconds(inbound.user.channel).time():
                    replies = await self.storage.update(
                        inbound.user, change, once=once, ttl=lifetime
                    )
            except BotError:
                log.exception("a turn failed", extra={"user": inbound.user})
                return [self._apology(inbound)]
            before, after, erased = committed[0] if committed else (None, None, False)
            if self.listener is not None and committed and before != after:
                await self._tell(inbound.user, before, after)
            if erased:  # /delete, or declining consent: whatever else is kept goes too
                try:
                    await self.erasure.erase(inbound.user)
                except BotError:  # logged by the registry; /delete again retries it
                    return [self._apology(inbound)]
            return [await materialize(reply) for reply in replies]

    def _apology(self, inbound: Inbound) -> Outbound:
        return Outbound(apology(self.catalogs[lang_from_hint(inbound.lang_hint)]))

    async def _tell(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        assert self.listener is not None
        try:
            await self.listener(user, before, after)
        except Exception:  # a listener's failure must never cost the user their reply
            log.exception("engine listener failed for a %s user", user.channel)
