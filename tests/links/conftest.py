"""Linking fixtures: a storage on each backend, and a wall clock SQLite can be moved by."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage


class MovableClock:
    """Wall-clock seconds for SqliteStorage, standing still until moved."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        backend: Storage = SqliteStorage(tmp_path / "kvisa.db")
    else:
        url = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        backend = RedisStorage.from_url(url, prefix=prefix)
    async with backend:
        yield backend
