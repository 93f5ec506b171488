"""The contract suite's backends: each test gets a factory of storages sharing one backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kvisa.storage import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage

StorageFactory = Callable[[], Storage]  # builds another storage on the same backend


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def open_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StorageFactory]:
    """Opens storages on one backend (same sqlite file / same redis db and prefix), as
    separate processes would; every storage it made is closed afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'kvisa.db'}"

        def build() -> Storage:
            return SqliteStorage.from_url(url)

    else:
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")

        def build() -> Storage:
            return RedisStorage.from_url(redis_url, prefix=prefix)

    opened: list[Storage] = []

    def make() -> Storage:
        storage = build()
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        await storage.close()


@pytest.fixture
def storage(open_backend: StorageFactory) -> Storage:
    return open_backend()
