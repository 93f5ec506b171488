"""Redis backend: every bot process shares one Redis; atomicity comes from a Lua script."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

from redis.asyncio import BlockingConnectionPool, Redis
from redis.client import NEVER_DECODE
from redis.exceptions import RedisError

from bot.errors import StorageError
from storage.base import JSON, Record, Storage, UserKey

# Compare-and-set in one round trip. KEYS[1] is the user's hash {v, data}; KEYS[2] the
# version counter shared by every user; ARGV[1] the expected version (0: must not exist);
# ARGV[2] the new JSON, absent to delete.
# Redis runs a script without interleaving other commands, which is what makes it atomic.
# A new version comes from the counter, which never goes back, so versions never repeat, not
# even for a user deleted and created anew: a writer holding a version from before the delete
# cannot overwrite the new record. A record older than the counter (written before it existed)
# still moves forward: the counter is first raised past its version.
PUT_SCRIPT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then
    return 0
end
if ARGV[2] == nil then
    redis.call('DEL', KEYS[1])
else
    local version = redis.call('INCR', KEYS[2])
    if version <= current then
        version = current + 1
        redis.call('SET', KEYS[2], version)
    end
    redis.call('HSET', KEYS[1], 'v', version, 'data', ARGV[2])
end
return 1
"""

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

    def user_pattern(self) -> str:
        """A SCAN MATCH pattern for every user key, whatever the prefix contains."""
        literal = "".join("\\" + c if c in GLOB_SPECIAL else c for c in self.prefix)
        return f"{literal}:user:*"

    def parse_user(self, redis_key: str) -> UserKey:
        return UserKey.parse(redis_key.removeprefix(f"{self.prefix}:user:"))


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn redis-py failures (connection, timeout, server replies) into StorageError."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StorageError(f"redis: {exc}") from exc


def text(value: bytes | str) -> str:
    # The client may or may not have been built with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


class RedisStorage(Storage):
    """User records as hashes, claims and values as (expiring) keys in one Redis database."""

    def __init__(self, client: Redis, prefix: str = "kvisa") -> None:
        self.client = client
        self.keys = KeyBuilder(prefix)
        self._put = client.register_script(PUT_SCRIPT)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "kvisa") -> Self:
        """``redis://host:port/db``, ``rediss://...`` or ``unix:///path/to/socket``."""
        # A blocking pool: under load, callers wait for a free connection instead of failing
        # with "Too many connections" (redis-py's default pool refuses past its maximum).
        pool = BlockingConnectionPool.from_url(url, max_connections=100, timeout=10)
        return cls(Redis.from_pool(pool), prefix=prefix)  # the client owns (and closes) the pool

    async def get(self, key: UserKey) -> Record | None:
        with translate_errors():
            version, data = await self.client.hmget(self.keys.user(key), ["v", "data"])
        if version is None or data is None:
            return None
        try:
            decoded = json.loads(data)
        except ValueError as exc:
            raise StorageError(f"redis: record {key} is not valid JSON") from exc
        if not isinstance(decoded, dict):
            raise StorageError(f"redis: record {key} is not a JSON object")
        return Record(decoded, int(version))

    async def put(self, key: UserKey, data: JSON | None, *, expected_version: int) -> bool:
        args: list[str | int] = [expected_version]
        if data is not None:
            args.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        with translate_errors():
            keys = [self.keys.user(key), self.keys.version_counter()]
            return bool(await self._put(keys=keys, args=args))

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
                "GET", self.keys.value(name), **{NEVER_DECODE: []})
        return None if value is None else bytes(value)

    async def delete_value(self, name: str) -> None:
        with translate_errors():
            await self.client.delete(self.keys.value(name))

    async def ping(self) -> None:
        with translate_errors():
            await self.client.ping()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with translate_errors():
            await self.client.aclose()
