"""The storage contract every backend fulfils, and the helpers derived from it once."""

from __future__ import annotations

import asyncio
import math
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import orjson

from kvisa.errors import ConflictError, ContentConflict, StorageError
from kvisa.identity import UserKey

T = TypeVar("T")
JSON = dict[str, Any]
# A record's time to live that never ends (see Storage.put).
FOREVER = math.inf
# What Storage.update is given to choose a record's time to live from the data it writes.
Lifetime = Callable[[JSON], float]


def encode_record(data: JSON) -> bytes:
    """A user's record as stored: compact UTF-8 JSON. orjson, not json: every turn of every
    user encodes and decodes its record (see docs/decisions.md)."""
    return orjson.dumps(data)


def decode_record(backend: str, key: object, text: bytes | str) -> JSON:
    """A stored record read back; StorageError (naming the backend and the key) when it is not
    a JSON object."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StorageError(f"{backend}: record {key} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise StorageError(f"{backend}: record {key} is not a JSON object")
    return data


@dataclass(frozen=True)
class Once:
    """A claim that `Storage.update` takes in the same atomic step as its write, so that a
    change (a message, say) is applied at most once even when it is delivered twice: by two
    processes at the same time, or again while the first delivery is still being handled.

    `name` is a claim name like those of `Storage.claim` (the two share one namespace: a name
    claimed either way counts for both); it is remembered for `ttl` seconds.
    """

    name: str
    ttl: float


class AlreadyClaimed(Exception):
    """`Storage.update(..., once=...)` found its claim taken: the change was not applied.

    Not a BotError: it is no failure but an answer ("this was done before"), which callers
    that catch BotError to apologise to the user must let through.
    """


@dataclass(frozen=True)
class Record:
    """A user's stored state and its version.

    Every write gives the record a new, higher version, and versions are never reused for a
    key, even after a delete: a record deleted and created again never gets back a version
    it had before, so a writer still holding an old version can never overwrite it.
    """

    data: JSON
    version: int
    # Seconds it has left, as listed by records() (None: it lasts until deleted). get() and
    # update() do not read it: the hot path needs only data and version.
    ttl: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StoredValue:
    """A named value as stored, with the seconds it has left (None: it never expires)."""

    name: str
    value: bytes
    ttl: float | None


def check_ttl(ttl: float | None) -> None:
    """A record's ttl must be positive (FOREVER included) or None."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"record ttl must be positive, got {ttl}")


@dataclass(frozen=True)
class HeldClaim:
    """A claim still taken, with the seconds it has left."""

    name: str
    ttl: float


@dataclass(frozen=True)
class ContentVersion:
    """One published version of the content (flows/): its id, when and by whom it was
    published, the publisher's note, the SHA-256 of the validated content, and the version it
    restored when it is a rollback. Ids grow by one with every publish and are never reused;
    the current version is always the one with the highest id (a rollback publishes the old
    content again)."""

    id: int
    published_at: float  # seconds since the epoch (UTC)
    author: str
    note: str
    sha256: str
    rollback_of: int | None = None

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "published_at": self.published_at,
            "author": self.author,
            "note": self.note,
            "sha256": self.sha256,
            "rollback_of": self.rollback_of,
        }

    @classmethod
    def from_json(cls, data: JSON) -> ContentVersion:
        rollback = data.get("rollback_of")
        return cls(
            int(data["id"]),
            float(data["published_at"]),
            str(data["author"]),
            str(data["note"]),
            str(data["sha256"]),
            None if rollback is None else int(rollback),
        )


class Storage(ABC):
    """Per-user JSON state with optimistic concurrency, plus a few shared primitives: claims
    (first caller wins, for a while) and expiring byte values (caches, small files)."""

    @property
    def namespace(self) -> str:
        """Where the deployment's keys live in a shared server (Redis's key prefix): services
        that keep keys of their own next to the storage's (the reminder scheduler's job store
        and leader lock, the broadcast runner's lock) put them under the same namespace."""
        return "kvisa"

    @classmethod
    @abstractmethod
    def from_url(cls, url: str) -> Self:
        """Build the backend from its URL."""

    @abstractmethod
    async def get(self, key: UserKey) -> Record | None:
        """The user's record, or None when nothing is stored."""

    @abstractmethod
    async def put(
        self, key: UserKey, data: JSON | None, *, expected_version: int, ttl: float | None = None
    ) -> bool:
        """Write (or delete, when data is None) only if the stored version is expected_version.

        expected_version 0 means "nothing is stored yet". Returns False on a version mismatch.
        `ttl`: the record expires that many seconds after this write (FOREVER: never); None
        keeps the expiry it had (a new record: none). An expired record is gone: get() and the
        listings do not see it, and a write expecting its version fails.
        A successful write stores a version higher than any the key ever had: versions are
        never reused for a key, even after a delete, so a put expecting a version read before
        a delete fails against the record created after it. A delete leaves nothing behind
        for the key (no tombstone).
        """

    @abstractmethod
    def users(self) -> AsyncIterator[UserKey]:
        """Every user with a stored record, in no particular order."""

    async def records(self) -> AsyncIterator[tuple[UserKey, Record]]:
        """Every stored record with its user and its time left (`Record.ttl`), in no particular
        order; a backend reads them in pages (constant memory), so a record written or deleted
        meanwhile may or may not be seen, but none is seen twice. (This generic version knows
        no expiry: both backends override it.)"""
        async for key in self.users():
            record = await self.get(key)
            if record is not None:  # deleted since users() listed it
                yield key, record

    @abstractmethod
    def values(self) -> AsyncIterator[StoredValue]:
        """Every value not yet expired (see `set_value`), in pages, none twice."""

    @abstractmethod
    def claims(self) -> AsyncIterator[HeldClaim]:
        """Every claim still taken (see `claim`), in pages, none twice."""

    @abstractmethod
    async def claim(self, name: str, ttl: float) -> bool:
        """Mark `name` as taken for `ttl` seconds; True only for the first caller."""

    @abstractmethod
    async def release(self, name: str) -> None:
        """End a claim before its ttl, so `name` can be claimed again at once.

        Whoever holds the claim is not checked: a claim used as a lock must be released by its
        holder within its ttl (make the ttl longer than the work it guards)."""

    @abstractmethod
    async def count(self, name: str, ttl: float) -> int:
        """Add one to the counter `name` and return the new count, atomically across
        processes. A new counter starts at 1 and expires `ttl` seconds after that first count
        (later counts leave its expiry alone); it is a value like those of `set_value` (its
        bytes are the decimal count), so `get_value` and `values()` see it."""

    @abstractmethod
    async def set_value(self, name: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value` under `name`, replacing any; it expires after `ttl` seconds (None:
        never)."""

    @abstractmethod
    async def get_value(self, name: str) -> bytes | None:
        """The value stored under `name`, or None when there is none or it has expired."""

    @abstractmethod
    async def delete_value(self, name: str) -> None:
        """Forget the value under `name` (nothing happens when there is none)."""

    @abstractmethod
    async def publish_content(
        self,
        content: bytes,
        *,
        author: str,
        note: str,
        sha256: str,
        published_at: float,
        rollback_of: int | None = None,
    ) -> ContentVersion:
        """Store `content` as a new version with the next id, atomically across processes, and
        make it current; the version as stored."""

    async def restore_content(self, versions: Sequence[tuple[ContentVersion, bytes]]) -> int:
        """Put published versions back as they were (an import): each under its own id, with
        its time, author, note, hash and rollback_of, all in one atomic step; the current id is
        then the highest stored, and a later publish takes the next one. A version stored
        already exactly so is skipped (restoring twice changes nothing); an id that holds a
        different version raises ContentConflict, and nothing is written. How many were
        written."""
        pending = {version.id: (version, bytes(content)) for version, content in versions}
        if len(pending) != len(versions) or any(i < 1 for i in pending):
            raise ValueError("content versions to restore need distinct ids from 1")
        while pending:
            taken = await self._insert_content(list(pending.values()))
            if not taken:
                return len(pending)
            # Versions never change once stored, so what is read here stays true.
            for version_id in taken:
                if await self.content_version(version_id) != pending[version_id]:
                    raise ContentConflict(version_id)
                del pending[version_id]  # stored exactly so: skipped
        return 0

    @abstractmethod
    async def _insert_content(self, versions: list[tuple[ContentVersion, bytes]]) -> list[int]:
        """Store every version under its own id in one atomic step, raising the current id to
        the highest, unless some of the ids are taken: then write nothing and return those."""

    @abstractmethod
    async def content_versions(self) -> list[ContentVersion]:
        """Every published version, oldest first."""

    @abstractmethod
    async def content_version(self, version_id: int) -> tuple[ContentVersion, bytes] | None:
        """A version and its content, or None when no version has that id."""

    @abstractmethod
    async def current_content_id(self) -> int | None:
        """The current (highest) version id, None before the first publish; one cheap read,
        meant to be polled by every replica."""

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
        once: Once | None = None,
        ttl: Lifetime | None = None,
    ) -> T:
        """Read-modify-write with retries: `change` gets the current data (or None) and returns
        the new data (None deletes) and a result. It may run more than once, so it must be pure.

        `ttl`, when given, says from the data about to be written how long the record lasts
        (see `put`); without it a write keeps the record's expiry. Nothing written (the change
        left the data as it was), nothing changes, the expiry included.

        With `once`, the update also takes that claim, and raises AlreadyClaimed without
        changing anything when the claim was already taken (the claim is taken even when the
        change leaves the data as it is). This generic version claims first and gives the
        claim back when the update fails; a backend that can do both in one atomic step
        (Redis) overrides it.
        """
        if once is None:
            return await self._update(key, change, attempts, ttl)
        if not await self.claim(once.name, once.ttl):
            raise AlreadyClaimed(once.name)
        try:
            return await self._update(key, change, attempts, ttl)
        except Exception:
            # Not applied: give the claim back so that a second delivery may try again.
            with suppress(StorageError):  # the first failure is the one to report
                await self.release(once.name)
            raise

    async def _update(
        self,
        key: UserKey,
        change: Callable[[JSON | None], tuple[JSON | None, T]],
        attempts: int,
        ttl: Lifetime | None,
    ) -> T:
        for attempt in range(attempts):
            record = await self.get(key)
            current = record.data if record else None
            new, result = change(current)
            if new == current:
                return result
            expected = record.version if record else 0
            lasts = None if new is None or ttl is None else ttl(new)
            if await self.put(key, new, expected_version=expected, ttl=lasts):
                return result
            # Someone else wrote first: back off a little and recompute from their state.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConflictError(f"{key}: still contended after {attempts} attempts")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
