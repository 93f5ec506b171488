"""What every part of the engine shares: its state, the pure turn, the apology, and telling
the listeners that a user's stored state changed."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Histogram

from kvisa import metrics
from kvisa.bot import applicants
from kvisa.bot.content.model import Flows
from kvisa.bot.content.versions import ContentSource
from kvisa.bot.engine.handlers.handover import OFFICE_HOURS
from kvisa.bot.engine.links import Links
from kvisa.bot.engine.turn import Shared, Turn
from kvisa.bot.erasure import Erasure, Holding, OwnedValues
from kvisa.bot.i18n import Catalogs, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.ordering import KeyedLocks
from kvisa.bot.policy.office import OfficeHours
from kvisa.errors import ErasureIncomplete
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger("kvisa.bot.engine.engine")  # the name operators' filters know

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


class EngineCore:
    """The engine's state and the steps every operation shares."""

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

    def apology(self, inbound: Inbound) -> Outbound:
        return Outbound(apology(self.catalogs[lang_from_hint(inbound.lang_hint)]))

    async def tell(
        self, user: UserKey, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        for listener in [self.listener, *self.watchers]:
            if listener is None:
                continue
            try:
                await listener(user, before, after)
            except Exception:  # a listener's failure must never cost the user their reply
                log.exception("engine listener failed for a %s user", user.channel)

    async def erase_rest(self, key: UserKey, before: dict[str, Any] | None) -> None:
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
