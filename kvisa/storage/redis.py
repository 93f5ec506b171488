"""Redis backend: every bot process shares one Redis; atomicity comes from a Lua script."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.client import NEVER_DECODE
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError
from redis.sentinel import Sentinel as SyncSentinel

from kvisa import metrics
from kvisa.errors import ConflictError, StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import (
    FOREVER,
    JSON,
    AlreadyClaimed,
    ContentVersion,
    HeldClaim,
    Lifetime,
    Once,
    Record,
    Storage,
    StoredValue,
    check_ttl,
    decode_record,
    encode_record,
)
from kvisa.storage.urls import is_sentinel, parse_sentinel

T = TypeVar("T")

# Compare-and-set in one round trip. KEYS[1] is the user's hash {v, data}; KEYS[2] the
# version counter shared by every user; KEYS[3], when given, a claim taken with the write
# (Storage.update's `once`). ARGV[1] is the expected version (0: must not exist); ARGV[2] what
# to do: "w" write ARGV[3] (the new JSON), "d" delete, "k" keep (compare, and claim, only);
# ARGV[4] the claim's time to live in milliseconds; ARGV[5] the record's expiry on a write:
# "" keeps the key's own (HSET leaves it), "-1" none (PERSIST), else milliseconds from now.
# Answers {1, new version} when done, {2} when the claim was taken already (nothing changed),
# {0, current version, current JSON} on a version mismatch, so the caller can recompute from
# the current record without reading it again.
# Redis runs a script without interleaving other commands, which is what makes it atomic.
# A new version comes from the counter, which never goes back, so versions never repeat, not
# even for a user deleted and created anew: a writer holding a version from before the delete
# cannot overwrite the new record. A record older than the counter (written before it existed)
# still moves forward: the counter is first raised past its version.
CAS_SCRIPT = """
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
    return {2}
end
local stored = redis.call('HMGET', KEYS[1], 'v', 'data')
local current = tonumber(stored[1] or '0')
if current ~= tonumber(ARGV[1]) then
    return {0, current, stored[2]}
end
local version = current
if ARGV[2] == 'w' then
    version = redis.call('INCR', KEYS[2])
    if version <= current then
        version = current + 1
        redis.call('SET', KEYS[2], version)
    end
    redis.call('HSET', KEYS[1], 'v', version, 'data', ARGV[3])
    if ARGV[5] == '-1' then
        redis.call('PERSIST', KEYS[1])
    elseif ARGV[5] ~= '' then
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
    end
elseif ARGV[2] == 'd' then
    redis.call('DEL', KEYS[1])
    version = 0
end
if KEYS[3] then
    redis.call('SET', KEYS[3], 1, 'PX', ARGV[4])
end
return {1, version}
"""
# Storage.count: INCR keeps a key's expiry, so the expiry is set by the first count only.
COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""
# Publish a content version in one step: the next id from KEYS[1] (which is then the current
# version), its metadata (JSON, without the id) and content in the hash under ARGV[1] .. id.
PUBLISH_SCRIPT = """
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', ARGV[1] .. id, 'meta', ARGV[2], 'content', ARGV[3])
return id
"""
# Restore content versions in one step, all or none: ARGV[1] is the prefix of the version
# hashes, then (id, meta, content) for each. When any of the ids is taken, nothing is written
# and those ids are the answer; else every hash is written and the counter KEYS[1] raised to
# the highest id (never lowered), so the next publish takes the id after it.
RESTORE_SCRIPT = """
local taken = {}
for i = 2, #ARGV, 3 do
    if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 1 then
        table.insert(taken, ARGV[i])
    end
end
if #taken > 0 then
    return taken
end
local top = tonumber(redis.call('GET', KEYS[1]) or '0')
for i = 2, #ARGV, 3 do
    redis.call('HSET', ARGV[1] .. ARGV[i], 'meta', ARGV[i + 1], 'content', ARGV[i + 2])
    top = math.max(top, tonumber(ARGV[i]))
end
redis.call('SET', KEYS[1], top)
return {}
"""
WRITTEN, CLAIMED = 1, 2  # CAS_SCRIPT's answers; 0 is a version mismatch
# Records this process last read or wrote, kept so that an update can go straight to the
# compare-and-set (one round trip instead of two); the compare-and-set catches a stale one.
KNOWN_RECORDS = 4096


# Keys read a page at a time by users(), records(), values() and claims().
PAGE = 500
NO_KEY, NO_EXPIRY = -2, -1  # what PTTL answers for a missing key and for one without expiry

# Characters SCAN MATCH treats as glob syntax; a prefix containing them is matched literally.
GLOB_SPECIAL = "\\*?[]"


@dataclass(frozen=True)
class KeyBuilder:
    """Turns user keys and claim names into Redis key strings under one prefix."""

    prefix: str = "kvisa"

    def user(self, key: UserKey) -> str:
        return f"{self.prefix}:user:{key.channel}:{key.id}"

    def claim(self, name: str) -> str:
        return f"{self.prefix}:claim:{name}"

    def value(self, name: str) -> str:
        return f"{self.prefix}:value:{name}"

    def version_counter(self) -> str:
        """The counter every user's new version is taken from (see PUT_SCRIPT)."""
        return f"{self.prefix}:version"

    def content_current(self) -> str:
        """The id of the last published content version (also the id counter)."""
        return f"{self.prefix}:content:current"

    def content_version(self, version_id: int | str = "") -> str:
        """The hash of one content version {meta, content}; without an id, its prefix."""
        return f"{self.prefix}:content:version:{version_id}"

    def user_pattern(self) -> str:
        """A SCAN MATCH pattern for every user key, whatever the prefix contains."""
        return self.pattern("user")

    def pattern(self, kind: str) -> str:
        """A SCAN MATCH pattern for every key of a kind (user, value, claim)."""
        literal = "".join("\\" + c if c in GLOB_SPECIAL else c for c in self.prefix)
        return f"{literal}:{kind}:*"

    def parse_user(self, redis_key: str) -> UserKey:
        return UserKey.parse(self.name(redis_key, "user"))

    def name(self, redis_key: str, kind: str) -> str:
        """What follows the prefix and kind: a value's or claim's name."""
        return redis_key.removeprefix(f"{self.prefix}:{kind}:")


class ScriptBatch:
    """Runs a Lua script for many callers, one pipeline per turn of the event loop.

    Under load many users' turns reach their compare-and-set in the same turn of the loop;
    each one on its own would take a connection from the pool, write, and wait for its own
    reply. Here the calls made while the loop is busy are sent together as one pipeline (one
    connection, one write, the replies read in order) once the loop comes round: a call waits
    no longer than it would have waited for its turn anyway, and a lone call is sent as it is.
    Each call is still its own script run, atomic on its own; batching changes the number of
    round trips, never what a call does. (redis-py has no automatic pipelining of its own.)
    """

    def __init__(self, client: Redis, script: AsyncScript) -> None:
        self.client = client
        self.script = script
        self._waiting: list[tuple[list[str], list[bytes | str | int], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[str], args: list[bytes | str | int]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((keys, args, future))
        if len(self._waiting) == 1:  # the first of this turn of the loop sends them all
            loop.call_soon(self._send_waiting)
        return await future

    def _send_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[list[str], list[bytes | str | int], asyncio.Future[Any]]]
    ) -> None:
        try:
            answers = await self._run([(keys, args) for keys, args, _ in batch])
        except asyncio.CancelledError:  # shutting down: so are its callers
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the connection failed: every call of the batch did
            answers = [exc] * len(batch)
        for (_, _, future), answer in zip(batch, answers, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _run(self, calls: list[tuple[list[str], list[bytes | str | int]]]) -> list[Any]:
        if len(calls) == 1:
            keys, args = calls[0]
            return [await self.script(keys=keys, args=args)]
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.script.sha, len(keys), *keys, *args)
            answers: list[Any] = await pipe.execute(raise_on_error=False)
        for i, answer in enumerate(answers):
            if isinstance(answer, NoScriptError):  # Redis restarted or was flushed: did not run
                keys, args = calls[i]
                answers[i] = await self.script(keys=keys, args=args)  # loads it, then runs it
        return answers

    async def drain(self) -> None:
        """Wait until every batch already handed over has been answered."""
        while self._waiting or self._sending:
            if self._sending:
                await asyncio.wait(set(self._sending))
            else:
                await asyncio.sleep(0)  # the batch is sent at the loop's next turn


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn redis-py failures (connection, timeout, server replies) into StorageError."""
    try:
        yield
    except (RedisError, OSError) as exc:
        STORAGE_ERRORS.inc()
        raise StorageError(f"redis: {exc}") from exc


STORAGE_ERRORS = metrics.storage_errors.labels("redis")
POOL_WAIT = 10  # seconds a caller waits for a free connection of a bounded pool


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's connections, found through the sentinels, in a pool that makes callers
    wait for a free connection rather than fail (as BlockingConnectionPool does)."""


class SentinelRedis(Redis):
    """A client of a Sentinel-managed master that also closes its sentinels' connections."""

    managed_by: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.managed_by is not None:
            await self.managed_by.aclose()


class SyncSentinelRedis(redis.Redis):
    """The blocking client's counterpart (the reminder job store runs in threads)."""

    managed_by: SyncSentinel | None = None

    def close(self) -> None:
        super().close()
        if self.managed_by is not None:
            for node in self.managed_by.sentinels:
                node.close()


def connect(url: str, *, max_connections: int | None = None, **options: Any) -> Redis:
    """An asyncio client for a Redis URL: `redis://`, `rediss://`, `unix://` (redis-py reads
    them), or `redis+sentinel://...` (storage/urls.py): the master the sentinels name, found
    again after a failover. With `max_connections`, callers wait for a free connection."""
    if not is_sentinel(url):
        if max_connections is None:
            return Redis.from_url(url, **options)
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=POOL_WAIT, **options
        )
        return Redis.from_pool(pool)  # the client owns (and closes) the pool
    target = parse_sentinel(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={"socket_timeout": 5, "socket_connect_timeout": 5},
    )
    pool_options: dict[str, Any] = {}
    if max_connections is not None:
        pool_options = {
            "connection_pool_class": BlockingSentinelPool,
            "max_connections": max_connections,
            "timeout": POOL_WAIT,
        }
    client = sentinel.master_for(
        target.master,
        redis_class=SentinelRedis,
        db=target.db,
        username=target.username,
        password=target.password,
        **pool_options,
        **options,
    )
    assert isinstance(client, SentinelRedis)
    client.managed_by = sentinel
    return client


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client, as `connect` (the reminder job store runs in a worker thread)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel(url)
    sentinel = SyncSentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={"socket_timeout": 5, "socket_connect_timeout": 5},
    )
    client = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.master,
        redis_class=SyncSentinelRedis,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )
    assert isinstance(client, SyncSentinelRedis)
    client.managed_by = sentinel
    return client


def text(value: bytes | str) -> str:
    # The client may or may not have been built with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


class RedisStorage(Storage):
    """User records as hashes, claims and values as (expiring) keys in one Redis database."""

    def __init__(self, client: Redis, prefix: str = "kvisa") -> None:
        self.client = client
        self.keys = KeyBuilder(prefix)
        self._cas = ScriptBatch(client, client.register_script(CAS_SCRIPT))
        self._count = client.register_script(COUNT_SCRIPT)
        self._publish = client.register_script(PUBLISH_SCRIPT)
        self._restore = client.register_script(RESTORE_SCRIPT)
        # user -> (version, JSON text) as last read or written here; insertion order is
        # recency, so the first entry is the one to forget (see KNOWN_RECORDS).
        self._known: dict[UserKey, tuple[int, bytes | str]] = {}
        self._closed = False

    @property
    def namespace(self) -> str:
        return self.keys.prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "kvisa") -> Self:
        """``redis://host:port/db``, ``rediss://...``, ``unix:///path/to/socket`` or
        ``redis+sentinel://host:port[,host:port]/master[/db]``."""
        # A blocking pool: under load, callers wait for a free connection instead of failing
        # with "Too many connections" (redis-py's default pool refuses past its maximum).
        return cls(connect(url, max_connections=100), prefix=prefix)

    async def get(self, key: UserKey) -> Record | None:
        with translate_errors():
            version, data = await self.client.hmget(self.keys.user(key), ["v", "data"])
        if version is None or data is None:
            self._known.pop(key, None)
            return None
        return self._remember(key, int(version), data)

    async def put(
        self, key: UserKey, data: JSON | None, *, expected_version: int, ttl: float | None = None
    ) -> bool:
        check_ttl(ttl)
        if data is None:
            return await self._compare_and_set(key, expected_version, "d") is True
        text = encode_record(data)
        return await self._compare_and_set(key, expected_version, "w", text, ttl=ttl) is True

    async def update(
        self,
        key: UserKey,
        change: Callable[[JSON | None], tuple[JSON | None, T]],
        *,
        attempts: int = 50,
        once: Once | None = None,
        ttl: Lifetime | None = None,
    ) -> T:
        """As Storage.update, in one round trip when this process knows the record: the
        compare-and-set is tried on the record as last seen here (a stale one fails and hands
        back the current record), and `once` is claimed inside the same script."""
        known = self._known.get(key)
        record, fresh = (
            (await self.get(key), True) if known is None else (self._decode(key, *known), False)
        )
        for attempt in range(attempts):
            current = record.data if record else None
            new, result = change(current)
            unchanged = new == current
            if unchanged and fresh and once is None:
                return result  # nothing to write, and read just now: as the generic update
            expected = record.version if record else 0
            if unchanged:  # still compared: the result may come from a stale record
                outcome = await self._compare_and_set(key, expected, "k", once=once)
            elif new is None:
                outcome = await self._compare_and_set(key, expected, "d", once=once)
            else:
                lasts = None if ttl is None else ttl(new)
                check_ttl(lasts)
                outcome = await self._compare_and_set(
                    key, expected, "w", encode_record(new), once, lasts
                )
            if outcome is True:
                return result
            if outcome is False:
                assert once is not None
                raise AlreadyClaimed(once.name)
            if fresh:  # someone else wrote first: back off a little before recomputing
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
            record, fresh = outcome, True
        raise ConflictError(f"{key}: still contended after {attempts} attempts")

    async def _compare_and_set(
        self,
        key: UserKey,
        expected: int,
        action: str,
        text: bytes = b"",
        once: Once | None = None,
        ttl: float | None = None,
    ) -> bool | Record | None:
        """Run CAS_SCRIPT: True when done, False when `once` was claimed already, and on a
        version mismatch the current record (None: there is none)."""
        keys = [self.keys.user(key), self.keys.version_counter()]
        expiry = "" if ttl is None else "-1" if ttl == FOREVER else math.ceil(ttl * 1000)
        args: list[bytes | str | int] = [expected, action, text, 0, expiry]
        if once is not None:
            if once.ttl <= 0:
                raise ValueError(f"claim ttl must be positive, got {once.ttl}")
            keys.append(self.keys.claim(once.name))
            args[3] = math.ceil(once.ttl * 1000)
        with translate_errors():
            answer = await self._cas(keys=keys, args=args)
        status, version = int(answer[0]), int(answer[1]) if len(answer) > 1 else 0
        if status == CLAIMED:
            return False
        if status == WRITTEN:
            if action == "w":
                self._known.pop(key, None)  # re-inserted last: the most recently used
                self._keep(key, version, text)
            elif action == "d":
                self._known.pop(key, None)
            return True
        data = answer[2] if len(answer) > 2 else None
        if version == 0 or data is None:
            self._known.pop(key, None)
            return None
        return self._remember(key, version, data)

    def _remember(self, key: UserKey, version: int, text: bytes | str) -> Record:
        """The record read from Redis, kept for the next update (see KNOWN_RECORDS)."""
        record = self._decode(key, version, text)  # never keep what cannot be decoded
        self._known.pop(key, None)
        self._keep(key, version, text)
        return record

    def _keep(self, key: UserKey, version: int, text: bytes | str) -> None:
        self._known[key] = (version, text)
        if len(self._known) > KNOWN_RECORDS:
            del self._known[next(iter(self._known))]

    @staticmethod
    def _decode(key: UserKey, version: int, text: bytes | str) -> Record:
        return Record(decode_record("redis", key, text), version)

    async def users(self) -> AsyncIterator[UserKey]:
        # SCAN may return a key more than once (while Redis rehashes); a broadcast must not
        # reach anyone twice, so remember what was already yielded.
        seen: set[str] = set()
        with translate_errors():
            async for raw in self.client.scan_iter(match=self.keys.user_pattern(), count=500):
                redis_key = text(raw)
                if redis_key not in seen:
                    seen.add(redis_key)
                    yield self.keys.parse_user(redis_key)

    async def _scan(self, kind: str) -> AsyncIterator[list[str]]:
        """The keys of a kind, a page at a time, none twice (SCAN may repeat a key while
        Redis rehashes, so what was handed out is remembered: the names only)."""
        seen: set[str] = set()
        page: list[str] = []
        with translate_errors():
            async for raw in self.client.scan_iter(match=self.keys.pattern(kind), count=PAGE):
                redis_key = text(raw)
                if redis_key not in seen:
                    seen.add(redis_key)
                    page.append(redis_key)
                    if len(page) >= PAGE:
                        yield page
                        page = []
        if page:
            yield page

    async def records(self) -> AsyncIterator[tuple[UserKey, Record]]:
        async for page in self._scan("user"):
            with translate_errors():
                async with self.client.pipeline(transaction=False) as pipe:
                    for redis_key in page:
                        pipe.hmget(redis_key, ["v", "data"])
                        pipe.pttl(redis_key)
                    answers: list[Any] = await pipe.execute()
            for i, redis_key in enumerate(page):
                (version, data), milliseconds = answers[2 * i], int(answers[2 * i + 1])
                if version is None or data is None or milliseconds == NO_KEY:
                    continue  # deleted or expired meanwhile
                key = self.keys.parse_user(redis_key)
                record = self._decode(key, int(version), data)
                ttl = None if milliseconds == NO_EXPIRY else milliseconds / 1000
                yield key, Record(record.data, record.version, ttl)

    async def values(self) -> AsyncIterator[StoredValue]:
        async for page in self._scan("value"):
            with translate_errors():
                async with self.client.pipeline(transaction=False) as pipe:
                    for redis_key in page:
                        pipe.pttl(redis_key)
                        # Bytes as stored, whatever the client decodes (see get_value).
                        pipe.execute_command("GET", redis_key, **{NEVER_DECODE: []})
                    answers: list[Any] = await pipe.execute()
            for i, redis_key in enumerate(page):
                milliseconds, value = int(answers[2 * i]), answers[2 * i + 1]
                if value is None or milliseconds == NO_KEY:  # expired or deleted meanwhile
                    continue
                ttl = None if milliseconds == NO_EXPIRY else milliseconds / 1000
                yield StoredValue(self.keys.name(redis_key, "value"), bytes(value), ttl)

    async def claims(self) -> AsyncIterator[HeldClaim]:
        async for page in self._scan("claim"):
            with translate_errors():
                async with self.client.pipeline(transaction=False) as pipe:
                    for redis_key in page:
                        pipe.pttl(redis_key)
                    answers: list[Any] = await pipe.execute()
            for redis_key, milliseconds in zip(page, answers, strict=True):
                if int(milliseconds) > 0:  # claims always expire; gone ones answer -2
                    yield HeldClaim(self.keys.name(redis_key, "claim"), int(milliseconds) / 1000)

    async def claim(self, name: str, ttl: float) -> bool:
        if ttl <= 0:
            raise ValueError(f"claim ttl must be positive, got {ttl}")
        # Round up so a tiny ttl still sets an expiry (PX 0 is an error).
        milliseconds = math.ceil(ttl * 1000)
        with translate_errors():
            return bool(await self.client.set(self.keys.claim(name), 1, nx=True, px=milliseconds))

    async def release(self, name: str) -> None:
        with translate_errors():
            await self.client.delete(self.keys.claim(name))

    async def count(self, name: str, ttl: float) -> int:
        if ttl <= 0:
            raise ValueError(f"counter ttl must be positive, got {ttl}")
        with translate_errors():
            count = await self._count(keys=[self.keys.value(name)], args=[math.ceil(ttl * 1000)])
        return int(count)

    async def set_value(self, name: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"value ttl must be positive, got {ttl}")
        milliseconds = None if ttl is None else math.ceil(ttl * 1000)
        with translate_errors():
            await self.client.set(self.keys.value(name), bytes(value), px=milliseconds)

    async def get_value(self, name: str) -> bytes | None:
        # Values are bytes (a picture, a calendar file): never let a client built with
        # decode_responses=True turn them into text (or fail on bytes that are not UTF-8).
        with translate_errors():
            value = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "GET", self.keys.value(name), **{NEVER_DECODE: []}
            )
        return None if value is None else bytes(value)

    async def delete_value(self, name: str) -> None:
        with translate_errors():
            await self.client.delete(self.keys.value(name))

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
        meta = {
            "published_at": published_at,
            "author": author,
            "note": note,
            "sha256": sha256,
            "rollback_of": rollback_of,
        }
        with translate_errors():
            version_id = await self._publish(
                keys=[self.keys.content_current()],
                args=[self.keys.content_version(), encode_record(meta), bytes(content)],
            )
        return ContentVersion.from_json({**meta, "id": int(version_id)})

    async def _insert_content(self, versions: list[tuple[ContentVersion, bytes]]) -> list[int]:
        args: list[str | bytes | int] = [self.keys.content_version()]
        for version, content in versions:
            meta = {k: v for k, v in version.to_json().items() if k != "id"}  # as published
            args += [version.id, encode_record(meta), bytes(content)]
        with translate_errors():
            taken = await self._restore(keys=[self.keys.content_current()], args=args)
        return [int(version_id) for version_id in taken]

    async def content_versions(self) -> list[ContentVersion]:
        last = await self.current_content_id() or 0
        versions = []
        for start in range(1, last + 1, PAGE):
            with translate_errors():
                async with self.client.pipeline(transaction=False) as pipe:
                    for version_id in range(start, min(start + PAGE, last + 1)):
                        pipe.hget(self.keys.content_version(version_id), "meta")
                    metas = await pipe.execute()
            for offset, meta in enumerate(metas):
                if meta is not None:
                    data = decode_record("redis", "content version", meta)
                    versions.append(ContentVersion.from_json({**data, "id": start + offset}))
        return versions

    async def content_version(self, version_id: int) -> tuple[ContentVersion, bytes] | None:
        with translate_errors():
            # redis-py leaves execute_command untyped; NEVER_DECODE keeps the content bytes.
            meta, content = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "HMGET",
                self.keys.content_version(version_id),
                "meta",
                "content",
                **{NEVER_DECODE: []},
            )
        if meta is None or content is None:
            return None
        data = decode_record("redis", "content version", meta)
        return ContentVersion.from_json({**data, "id": version_id}), bytes(content)

    async def current_content_id(self) -> int | None:
        with translate_errors():
            current = await self.client.get(self.keys.content_current())
        return None if current is None else int(current)

    async def ping(self) -> None:
        with translate_errors():
            await self.client.ping()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._cas.drain()
        with translate_errors():
            await self.client.aclose()
