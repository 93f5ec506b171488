"""The engine: runs a turn against stored state, atomically, one turn per user at a time."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any, TypeVar

from prometheus_client import Histogram

from kvisa import metrics
from kvisa.bot import applicants
from kvisa.bot.applicants import LinkContext
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import ContentSource, stamped
from kvisa.bot.engine.choice import cleaned
from kvisa.bot.engine.handlers import REGISTRY
from kvisa.bot.engine.handlers.handover import OFFICE_HOURS
from kvisa.bot.engine.links import Links
from kvisa.bot.engine.turn import Shared, Turn
from kvisa.bot.erasure import Erasure, Holding, OwnedValues
from kvisa.bot.i18n import Catalogs, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound, materialize
from kvisa.bot.ordering import KeyedLocks
from kvisa.bot.policy.office import OfficeHours
from kvisa.bot.session import lifetime
from kvisa.errors import BotError, ErasureIncomplete
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
T = TypeVar("T")


MOVES = 8  # forwards followed in one turn before giving up (a link made and undone meanwhile)


class Moved(Exception):
    """The record read is not this identity's applicant (any more): look at `target`. Raised
    inside the change, so nothing is written and no claim taken."""

    def __init__(
        self,
        target: UserKey,
        forward: dict[str, Any] | None = None,
        abandon: UserKey | None = None,
    ) -> None:
        self.target, self.forward, self.abandon = target, forward, abandon


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
        # Also told after every committed change, like the listener (the workspace's case
        # index); each failure is logged and never costs the user their reply.
        self.watchers: list[Listener] = []
        self.interceptor: Interceptor | None = None
        # What else is kept about a user, erased with their record (see bot/erasure.py; the
        # process adds the holdings of its parts, bot/holdings.py).
        self.erasure = Erasure([Holding("owned values", OwnedValues(storage).erase)])
        # Keeps one user's turns in order within this process; the storage's version check
        # keeps them consistent across processes.
        self._locks: KeyedLocks[UserKey] = KeyedLocks()
        self.links = Links(storage)
        self.erasure.register(Holding("link codes", self.links.forget_codes))
        self._shared: Shared = {}  # built once for every user (Conversation.shared)
        self.content: ContentSource | None = None  # published versions (kvisa serve)

    @property
    def office_hours(self) -> OfficeHours:
        """When the agency answers conversations handed to a person (/human)."""
        hours: OfficeHours = self._shared.get(OFFICE_HOURS) or OfficeHours()
        return hours

    @office_hours.setter
    def office_hours(self, hours: OfficeHours) -> None:
        self._shared[OFFICE_HOURS] = hours  # what Conversation.shared gives the handler

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
            if before is not None:
                await self._tell(user, before, None)
            await self._erase_rest(user, before)
            return True

    async def _erase_rest(self, key: UserKey, before: dict[str, Any] | None) -> None:
        """Everything else of the applicant whose record under `key` is gone: the forwards of
        its other identities and every identity's holdings (ErasureIncomplete: some failed)."""
        for identity in applicants.identities(key, before):
            if identity != key:

                def unforward(
                    data: dict[str, Any] | None,
                ) -> tuple[dict[str, Any] | None, None]:
                    leads_here = (
                        applicants.is_forward(data) and data and data["linked_to"] == str(key)
                    )
                    return (None if leads_here else data), None

                await self.storage.update(identity, unforward)
            self.links.remember(identity, identity)
        failed: list[str] = []
        for identity in applicants.identities(key, before):
            try:
                await self.erasure.erase(identity)
            except ErasureIncomplete as exc:
                failed += exc.names
        if failed:
            raise ErasureIncomplete(failed)

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
                await self._tell(key, *committed[0])
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
                    return [self._apology(inbound)]
                if intercepted is not None:
                    return intercepted
            return await self._converse(inbound, once)

    async def _converse(self, inbound: Inbound, once: Once | None) -> list[Outbound]:
        """The turn, on the applicant the identity belongs to (following a forward, taking
        over a link half made); then the linking the turn asked for."""
        user = inbound.user
        key, fwd, gone = self.links.applicant_of(user), None, set[UserKey]()
        context: LinkContext | None = None
        prepared = False
        said: list[Outbound] = []
        for _ in range(MOVES):
            # One applicant's turns, whichever channel they come from: an identity's own lock
            # is its applicant's when it founded it (nearly always); a linked identity takes
            # its applicant's too (nobody holds an applicant's lock while waiting for another).
            async with self._locks(key) if key != user else nullcontext():
                try:
                    if not prepared:
                        context, prepared = await self.links.prepare(inbound, key), True
                    replies, turn, after = await self._run(key, inbound, once, context, fwd, gone)
                except Moved as moved:
                    if moved.abandon is not None:  # its forward gives the profile back
                        gone.add(moved.abandon)
                    key, fwd = moved.target, moved.forward
                    continue
                except BotError:
                    log.exception("a turn failed", extra={"user": user})
                    return [self._apology(inbound)]
            said += replies
            if turn is not None and turn.join_to is not None and applicants.is_forward(after):
                # This identity's record is a forward now: the applicant takes it in.
                key, fwd, once, context = UserKey.parse(turn.join_to[0]), after, None, None
                continue
            self.links.remember(user, key)
            return [await materialize(reply) for reply in said]
        log.warning("linking: a turn kept moving", extra={"user": user})
        return [self._apology(inbound)]

    async def _run(
        self,
        key: UserKey,
        inbound: Inbound,
        once: Once | None,
        context: LinkContext | None,
        fwd: dict[str, Any] | None,
        gone: set[UserKey],
    ) -> tuple[list[Outbound], Turn | None, dict[str, Any] | None]:
        """One try of the turn on the record under `key`; Moved when it is not the one. The
        replies, the turn committed and the record it wrote."""
        user = inbound.user
        committed: list[tuple[dict[str, Any] | None, dict[str, Any] | None, Turn]] = []

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[Outbound]]:
            joined_from: str | None = None
            stored = data
            if applicants.is_forward(data):
                assert data is not None
                target = applicants.target_of(data)
                if target not in gone:
                    raise Moved(target, data)
                data = data.get("kept") if applicants.has_profile(data.get("kept")) else None
            elif key != user and not applicants.lists(data, user):
                if fwd is None or applicants.target_of(fwd) != key:
                    raise Moved(user)  # a stale memory: start from the identity's own record
                if data is None or fwd.get("link_id") in (data.get("unlinked") or ()):
                    raise Moved(user, abandon=key)  # erased, or the link undone meanwhile
                data = applicants.joined(key, data, user, fwd, inbound.at)
                joined_from = str(user)
            link = context
            if joined_from is not None:
                others = [i for i in applicants.identities(key, data) if i != user]
                link = LinkContext("joined", other_channel=others[0].channel if others else "")
            turn = Turn(self.flows, self.catalogs, data, inbound, self._shared, link=link)
            new, replies = turn.run()
            new = stamped(new, turn.flows)
            committed[:] = [(None if applicants.is_forward(stored) else stored, new, turn)]
            return new, replies

        # Until consent the record expires (session.PRE_CONSENT); consent makes it last.
        with self._turn_seconds(user.channel).time():
            replies = await self.storage.update(key, change, once=once, ttl=lifetime)
        if not committed:
            return replies, None, None
        before, after, turn = committed[0]
        if before != after:
            # A record that became a forward has no reminders of its own any more.
            await self._tell(key, before, None if applicants.is_forward(after) else after)
        if turn.erased:  # /delete, or declining consent: whatever else is kept goes too
            try:
                await self._erase_rest(key, before)
            except BotError:  # logged by the registry; /delete again retries it
                return [self._apology(inbound)], turn, after
        if turn.leaving is not None and turn.left is not None:
            await self._give_back(key, turn.leaving, before or {}, turn.left)
        await self.links.tell(turn.notices)
        return replies, turn, after

    async def _give_back(
        self, key: UserKey, leaving: UserKey, before: dict[str, Any], own: dict[str, Any]
    ) -> None:
        """Unlinking's second step: the identity's forward becomes its own record again."""
        link_id = (before.get("link_ids") or {}).get(str(leaving))

        def change(data: dict[str, Any] | None) -> tuple[dict[str, Any] | None, None]:
            ours = applicants.is_forward(data) and data and data.get("link_id") == link_id
            return (own if ours else data), None

        await self.storage.update(leaving, change, ttl=lifetime)
        self.links.remember(leaving, leaving)
        await self._tell(leaving, None, own)

    def _apology(self, inbound: Inbound) -> Outbound:
        return Outbound(apology(self.catalogs[lang_from_hint(inbound.lang_hint)]))

    async def _tell(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        for listener in [self.listener, *self.watchers]:
            if listener is None:
                continue
            try:
                await listener(user, before, after)
            except Exception:  # a listener's failure must never cost the user their reply
                log.exception("engine listener failed for a %s user", user.channel)
