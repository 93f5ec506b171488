"""The storage contract every backend fulfils, and the helpers derived from it once."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from bot.errors import ConflictError

T = TypeVar("T")
JSON = dict[str, Any]


@dataclass(frozen=True, order=True)
class UserKey:
    """A user on one channel: ``telegram:12345``, ``wechat:oAbC...``, ``console:alice``."""

    channel: str
    id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> UserKey:
        channel, sep, ident = text.partition(":")
        if not sep or not channel or not ident:
            raise ValueError(f"not a channel-qualified user id: {text!r}")
        return cls(channel, ident)


@dataclass(frozen=True)
class Record:
    """A user's stored state and its version.

    Every write gives the record a new, higher version, and versions are never reused for a
    key, even after a delete: a record deleted and created again never gets back a version
    it had before, so a writer still holding an old version can never overwrite it.
    """

    data: JSON
    version: int


class Storage(ABC):
    """Per-user JSON state with optimistic concurrency, plus a few shared primitives: claims
    (first caller wins, for a while) and expiring byte values (caches, small files)."""

    @classmethod
    @abstractmethod
    def from_url(cls, url: str) -> Self:
        """Build the backend from its URL."""

    @abstractmethod
    async def get(self, key: UserKey) -> Record | None:
        """The user's record, or None when nothing is stored."""

    @abstractmethod
    async def put(self, key: UserKey, data: JSON | None, *, expected_version: int) -> bool:
        """Write (or delete, when data is None) only if the stored version is expected_version.

        expected_version 0 means "nothing is stored yet". Returns False on a version mismatch.
        A successful write stores a version higher than any the key ever had: versions are
        never reused for a key, even after a delete, so a put expecting a version read before
        a delete fails against the record created after it. A delete leaves nothing behind
        for the key (no tombstone).
        """

    @abstractmethod
    def users(self) -> AsyncIterator[UserKey]:
        """Every user with a stored record, in no particular order."""

    @abstractmethod
    async def claim(self, name: str, ttl: float) -> bool:
        """Mark `name` as taken for `ttl` seconds; True only for the first caller."""

    @abstractmethod
    async def release(self, name: str) -> None:
        """End a claim before its ttl, so `name` can be claimed again at once.

        Whoever holds the claim is not checked: a claim used as a lock must be released by its
        holder within its ttl (make the ttl longer than the work it guards)."""

    @abstractmethod
    async def set_value(self, name: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value` under `name`, replacing any; it expires after `ttl` seconds (None: never)."""

    @abstractmethod
    async def get_value(self, name: str) -> bytes | None:
        """The value stored under `name`, or None when there is none or it has expired."""

    @abstractmethod
    async def delete_value(self, name: str) -> None:
        """Forget the value under `name` (nothing happens when there is none)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StorageError unless the backend answers."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def update(
        self,
        key: UserKey,
        change: Callable[[JSON | None], tuple[JSON | None, T]],
        *,
        attempts: int = 50,
    ) -> T:
        """Read-modify-write with retries: `change` gets the current data (or None) and returns
        the new data (None deletes) and a result. It may run more than once, so it must be pure.
        """
        for attempt in range(attempts):
            record = await self.get(key)
            current = record.data if record else None
            new, result = change(current)
            if new == current:
                return result
            if await self.put(key, new, expected_version=record.version if record else 0):
                return result
            # Someone else wrote first: back off a little and recompute from their state.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConflictError(f"{key}: still contended after {attempts} attempts")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
