from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kvisa.bot.engine.engine import Engine
from kvisa.storage.sqlite import SqliteStorage
from tests.support import Chat, engine_on


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with SqliteStorage(tmp_path / "kvisa.db") as store:
        yield store


@pytest.fixture
def engine(storage: SqliteStorage) -> Engine:
    return engine_on(storage)


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return Chat(engine)
