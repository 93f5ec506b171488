"""A turn on the applicant an identity belongs to: following a forward to it, taking over a
link half made, and giving a profile back when an identity leaves (the linking of channels)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from kvisa.bot import applicants
from kvisa.bot.applicants import LinkContext
from kvisa.bot.content.versions import stamped
from kvisa.bot.engine.core import EngineCore, log
from kvisa.bot.engine.turn import Turn
from kvisa.bot.messages import Inbound, Outbound, materialize
from kvisa.bot.session import lifetime
from kvisa.errors import BotError
from kvisa.identity import UserKey
from kvisa.storage.base import Once

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


class Following(EngineCore):
    """The conversation turn, across linked identities."""

    async def converse(self, inbound: Inbound, once: Once | None) -> list[Outbound]:
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
                    return [self.apology(inbound)]
            said += replies
            if turn is not None and turn.join_to is not None and applicants.is_forward(after):
                # This identity's record is a forward now: the applicant takes it in.
                key, fwd, once, context = UserKey.parse(turn.join_to[0]), after, None, None
                continue
            self.links.remember(user, key)
            return [await materialize(reply) for reply in said]
        log.warning("linking: a turn kept moving", extra={"user": user})
        return [self.apology(inbound)]

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
            await self.tell(key, before, None if applicants.is_forward(after) else after)
        if turn.erased:  # /delete, or declining consent: whatever else is kept goes too
            try:
                await self.erase_rest(key, before)
            except BotError:  # logged by the registry; /delete again retries it
                return [self.apology(inbound)], turn, after
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
        await self.tell(leaving, None, own)
