"""Privacy fixtures: a storage on each backend with a way to list every key it holds."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage


class MovableClock:
    """Wall-clock seconds for SqliteStorage, standing still until moved."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


@dataclass
class Backend:
    """A storage and everything it holds, read behind its back (SQL rows, Redis keys)."""

    name: str
    storage: Storage
    listing: Callable[[], list[str]]
    redis_url: str | None = None  # for the services that keep keys of their own


def sqlite_keys(path: Path) -> Callable[[], list[str]]:
    def keys() -> list[str]:
        with closing(sqlite3.connect(path)) as db:
            users = [f"user:{k}" for (k,) in db.execute("SELECT key FROM users")]
            values = [f"value:{n}" for (n,) in db.execute("SELECT name FROM stored_values")]
            claims = [f"claim:{n}" for (n,) in db.execute("SELECT name FROM claims")]
        return sorted(users + values + claims)

    return keys


def redis_keys(url: str, prefix: str) -> Callable[[], list[str]]:
    """Every key under the prefix; the fields of the services' hashes and sorted sets too
    (the reminder job store, the reschedule queue), as `key#field`."""

    def keys() -> list[str]:
        listed = []
        with redis.Redis.from_url(url, decode_responses=True) as client:
            for key in client.scan_iter(match=f"{prefix}:*", count=500):
                name = key.removeprefix(f"{prefix}:")
                kind = client.type(key)
                if kind == "hash" and not name.startswith("user:"):
                    listed += [f"{name}#{field}" for field in client.hkeys(key)]
                elif kind == "zset":
                    listed += [f"{name}#{member}" for member in client.zrange(key, 0, -1)]
                else:
                    listed.append(name)
        return sorted(listed)

    return keys


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "kvisa.db"
        storage: Storage = SqliteStorage(path)
        keys = sqlite_keys(path)
        url = None
    else:
        url = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        storage = RedisStorage.from_url(url, prefix=prefix)
        keys = redis_keys(url, prefix)
    async with storage:
        yield Backend(request.param, storage, keys, url)
