"""The engine: runs a turn against stored state, atomically, one turn per user at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kvisa.bot import applicants
from kvisa.bot.engine.choice import cleaned
from kvisa.bot.engine.core import Interceptor, Listener, apology, log
from kvisa.bot.engine.following import Following
from kvisa.bot.engine.handlers import REGISTRY
from kvisa.bot.messages import Inbound, Outbound
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage.base import Once

__all__ = ["Engine", "Interceptor", "Listener", "apology", "commands"]
T = TypeVar("T")


def commands() -> Sequence[tuple[str, str]]:
    """(name, summary msgid) of the commands users are shown: /help, the platforms' lists."""
    return REGISTRY.listed()


class Engine(Following):
    """Channel-neutral: takes an Inbound, returns the Outbound replies."""

    async def handle(self, inbound: Inbound, *, once: Once | None = None) -> list[Outbound]:
        """The replies to `inbound`, its state change committed. With `once` (a channel's
        message id), a message delivered twice is applied once: the claim is taken in the same
        atomic step as the write, and AlreadyClaimed raised, nothing changed, if it was taken."""
        inbound = cleaned(inbound)  # an admin's texts too, before the interceptor sees them
        if self.content is not None:  # between turns: a turn is built on one version
            self.flows = await self.content.current()
        async with self._locks(inbound.user):
            if self.interceptor is not None:
                try:
                    intercepted = await self.interceptor(inbound)
                except BotError:
                    log.exception("admin command failed for a %s user", inbound.user.channel)
                    return [self.apology(inbound)]
                if intercepted is not None:
                    return intercepted
            return await self.converse(inbound, once)

    async def apply(
        self,
        user: UserKey,
        change: Callable[[dict[str, Any] | None], tuple[dict[str, Any] | None, T]],
    ) -> T:
        """A change made outside the user's own turns (the agency's staff ticking an item or
        answering a handed-over conversation): in order with the user's turns, committed like
        one (optimistic concurrency), and told to the listener and watchers. `change` must be
        pure and keep None as None (it never creates a user)."""
        key, _ = await self.links.locate(user)  # a linked identity's changes go to its applicant
        async with self._locks(key):
            committed: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []

            def recorded(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, T]:
                new, result = change(data)
                committed[:] = [(data, new)]
                return new, result

            result = await self.storage.update(key, recorded)
            if committed and committed[0][0] != committed[0][1]:
                await self.tell(key, *committed[0])
            return result

    async def mark_inactive(self, user: UserKey) -> None:
        """The channel identity blocked the bot or unsubscribed: no pushes there until it
        writes again (the applicant's other channels still get them)."""
        key, _ = await self.links.locate(user)

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
            if data is None or applicants.is_forward(data):
                return data, None
            gone = applicants.blocked(key, data) | {str(user)}
            everyone = {str(i) for i in applicants.identities(key, data)}
            return {**data, "blocked": sorted(gone), "inactive": everyone <= gone}, None

        async with self._locks(key):
            await self.storage.update(key, change)

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
            if before is not None:
                await self.tell(user, before, None)
            await self.erase_rest(user, before)
            return True
