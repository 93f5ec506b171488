"""What belongs to a user besides their record, in one registry that /delete and the retention
purge walk.

The record itself (answers, reported steps, the reminder ledger) is the engine's, and the
reminder job is derived from it: erasing the record tells the reminder service, whose leader
removes the job. Everything else kept about a user is a `Holding` registered here, by the
code that assembles the process (bot/holdings.py): WeChat file links and other values owned
by a user (`OwnedValues`), broadcast recipient rows, an admin's draft, console attachments.
A feature that keeps something new about a user (link codes, staff notes) registers its
holding there, or lists its values with `OwnedValues.add`, and erasure reaches it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kvisa.errors import ErasureIncomplete, StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holding:
    """Something kept about a user apart from their record, and how to erase it (idempotent:
    erasing what is not there does nothing)."""

    name: str
    erase: Callable[[UserKey], Awaitable[None]]


class Erasure:
    """The registry of holdings; `erase(user)` erases every one."""

    def __init__(self, holdings: Iterable[Holding] = ()) -> None:
        self.holdings: list[Holding] = []
        for holding in holdings:
            self.register(holding)

    def register(self, holding: Holding) -> None:
        if any(h.name == holding.name for h in self.holdings):
            raise ValueError(f"holding {holding.name!r} is registered already")
        self.holdings.append(holding)

    async def erase(self, user: UserKey) -> None:
        """Erase every holding of `user`; each is tried even when another fails, and
        ErasureIncomplete names those that failed."""
        failed = []
        for holding in self.holdings:
            try:
                await holding.erase(user)
            except Exception:  # the others are still erased; the caller hears which failed
                log.exception("erasing %s of a %s user failed", holding.name, user.channel)
                failed.append(holding.name)
        if failed:
            raise ErasureIncomplete(failed)


LOCK_TTL = 5.0  # seconds an index change may take (a claim: see Storage.claim)


class OwnedValues:
    """Storage values that belong to one user (a WeChat file link), listed in the value
    `owned:<user>` ({name: expiry in epoch seconds, or null}) so erasing the user finds them.
    The list expires with the last of its values."""

    def __init__(self, storage: Storage, now: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.now = now

    @staticmethod
    def index(user: UserKey) -> str:
        return f"owned:{user}"

    async def set(self, user: UserKey, name: str, value: bytes, ttl: float | None) -> None:
        """Store `value` under `name` as `set_value` does, listed as the user's. Listed first,
        so no failure can leave a value of the user's that erasure would not find."""
        now = self.now()
        async with self._locked(user):
            entries = await self._entries(user, now)
            entries[name] = None if ttl is None else now + ttl
            expiries = list(entries.values())
            lasts = None if None in expiries else max(e for e in expiries if e is not None) - now
            await self.storage.set_value(self.index(user), json.dumps(entries).encode(), lasts)
        await self.storage.set_value(name, value, ttl)

    async def names(self, user: UserKey) -> list[str]:
        """The names listed as the user's (some may have expired)."""
        return sorted(await self._entries(user, self.now()))

    async def erase(self, user: UserKey) -> None:
        async with self._locked(user):
            for name in await self._entries(user, None):
                await self.storage.delete_value(name)
            await self.storage.delete_value(self.index(user))

    async def _entries(self, user: UserKey, now: float | None) -> dict[str, float | None]:
        """The listed names (those expired by `now` left out, unless now is None)."""
        raw = await self.storage.get_value(self.index(user))
        try:
            stored = json.loads(raw) if raw else {}
        except ValueError:
            stored = {}
        if not isinstance(stored, dict):
            stored = {}
        return {
            str(name): expiry if isinstance(expiry, int | float) else None
            for name, expiry in stored.items()
            if now is None or not isinstance(expiry, int | float) or expiry > now
        }

    @asynccontextmanager
    async def _locked(self, user: UserKey) -> AsyncIterator[None]:
        lock = f"{self.index(user)}:lock"
        for _ in range(250):
            if await self.storage.claim(lock, LOCK_TTL):
                break
            await asyncio.sleep(0.02)
        else:
            raise StorageError(f"the list of a {user.channel} user's values stayed locked")
        try:
            yield
        finally:
            await self.storage.release(lock)
