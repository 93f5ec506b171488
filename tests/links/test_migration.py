"""Records written by the release before linking (tests/links/release-0, made by
make_release_data.py at db18558) move to the applicant format on start, on both backends,
once: a second run changes nothing, and the conversations go on as they stood."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import redis

from kvisa.bot.applicants import SCHEMA, identities, migrate, route
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.support import NOON_SHANGHAI, Chat, engine_on

RELEASE_0 = Path(__file__).parent / "release-0"
DONE, HALF = UserKey("telegram", "1001"), UserKey("wechat", "oHalfway")
NEVER, GONE = UserKey("telegram", "1002"), UserKey("wechat", "oUnfollowed")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def old_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A storage holding exactly what release 0 wrote."""
    if request.param == "sqlite":
        shutil.copy(RELEASE_0 / "kvisa.db", tmp_path / "kvisa.db")
        with closing(sqlite3.connect(tmp_path / "kvisa.db")) as db:
            (expires,) = db.execute("SELECT min(expires_at) FROM users").fetchone()
        written = expires - 24 * 3600  # read an hour after release 0 wrote it
        storage: Storage = SqliteStorage(tmp_path / "kvisa.db", now=lambda: written + 3600)
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        with redis.Redis.from_url(url) as client:
            for entry in json.loads((RELEASE_0 / "redis.json").read_text()):
                key = f"{prefix}:{entry['key']}"
                if "hash" in entry:
                    client.hset(key, mapping=entry["hash"])
                else:
                    client.set(key, entry["string"])
                if entry["pttl"] > 0:
                    client.pexpire(key, entry["pttl"])
        storage = RedisStorage.from_url(url, prefix=prefix)
    async with storage:
        yield storage


async def stored(storage: Storage) -> dict[UserKey, dict[str, Any]]:
    return {key: record.data async for key, record in storage.records()}


async def test_release_0_records_move_to_the_applicant_format_once(old_storage: Storage) -> None:
    before = await stored(old_storage)
    assert set(before) == {DONE, HALF, NEVER, GONE}
    assert all("identities" not in data for data in before.values())

    assert await migrate(old_storage) == 4
    after = await stored(old_storage)
    for key, data in after.items():
        assert data["schema"] == SCHEMA and identities(key, data) == [key]
        assert data["seen"] == {str(key): before[key]["last_seen"]}
        assert {k: v for k, v in data.items() if k in before[key]} == before[key]
    assert after[GONE]["blocked"] == [str(GONE)] and after[DONE]["blocked"] == []
    assert route(GONE, after[GONE], NOON_SHANGHAI) == []
    assert route(DONE, after[DONE], NOON_SHANGHAI) == [DONE]

    assert await migrate(old_storage) == 0  # idempotent
    assert await stored(old_storage) == after


async def test_the_pre_consent_record_keeps_its_day(old_storage: Storage) -> None:
    await migrate(old_storage)
    ttl = {key: record.ttl async for key, record in old_storage.records()}
    left = ttl[NEVER]
    assert left is not None and left <= 24 * 3600
    assert ttl[DONE] is None


async def test_conversations_of_release_0_go_on_and_link_after_migrating(
    old_storage: Storage,
) -> None:
    await migrate(old_storage)
    engine = engine_on(old_storage)
    done = Chat(engine, user=DONE)
    await done.send("/link")
    code = next(w.rstrip(".") for w in done.replies[0].text.split() if w.rstrip(".").isdigit())
    half = Chat(engine, user=HALF)
    await half.send(f"/link {code}")
    assert half.option_ids == ["mine", "theirs", "cancel"]  # both have answers
    await half.choose("theirs")
    applicant = (await old_storage.get(DONE)).data  # type: ignore[union-attr]
    assert identities(DONE, applicant) == [DONE, HALF]
    assert applicant["events"] == {"entered": "2026-11-20"}
