"""Stores to export from and import into: each test gets a factory of separate, empty stores on
one backend (SQLite files, or Redis prefixes), as the contract suite's backends."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.content.versions import Packed, pack
from kvisa.bot.data.format import unix_timestamp
from kvisa.bot.i18n import Catalogs
from kvisa.bot.paths import flows_dir
from kvisa.identity import UserKey
from kvisa.storage import Storage
from kvisa.storage.base import JSON
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage

StoreFactory = Callable[[], Storage]  # another empty store on the same backend

ALICE = UserKey("telegram", "1001")
BOB = UserKey("wechat", "oAbC-xyz_123")
CAROL = UserKey("console", "carol:with:colons")
PICTURE = b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + "日程".encode()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    opened: list[Storage] = []

    def make() -> Storage:
        n = len(opened)
        if request.param == "sqlite":
            storage: Storage = SqliteStorage(tmp_path / f"store{n}" / "kvisa.db")
        else:
            prefix = f"{request.getfixturevalue('redis_prefix')}:store{n}"
            storage = RedisStorage.from_url(request.getfixturevalue("redis_url"), prefix=prefix)
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        await storage.close()


async def fill(storage: Storage) -> None:
    """What a deployment keeps: users at several stages, a broadcast with its recipients, an
    admin's draft, a WeChat file link, a cached token, claims in flight."""
    profile = {
        "lang": "zh",
        "consent_at": "2026-11-25T04:00:00+00:00",
        "answers": {"degree": "master", "park": "zhangjiang", "birth_date": "1998-04-27"},
        "events": {"visa_applied": "2026-11-20"},
        "reminders_sent": {"telegram:1001:visa:7": "2026-11-27T01:00:00+00:00"},
        "snoozed": {"entry:3": "2026-11-29"},
        "paused": False,
        "note": '张伟 🇨🇳 \u2028 "quoted" \\ back',
    }
    await storage.put(ALICE, profile, expected_version=0)
    await storage.put(BOB, {"lang": "en", "consent_at": None, "declined": True}, expected_version=0)
    await storage.put(CAROL, {"answers": {}, "n": 1.5, "big": 2**62}, expected_version=0)
    await BroadcastStore(storage).create(
        en="Lingang update",
        zh="临港通知",
        segment="park=lingang",
        author="cli",
        created_at="2026-11-25T04:00:00+00:00",
        recipients=[ALICE, BOB],
    )
    await storage.set_value("bc:draft:telegram:1001", b'{"en": "draft"}', ttl=3600)
    await storage.set_value("wechat:file:AbC", PICTURE, ttl=86400)
    await storage.set_value("wechat:token:wx1", b"token-text", ttl=7000)
    await storage.claim("reminder:telegram:1001:entry:3", ttl=300)
    await storage.claim("telegram:42:update:9", ttl=86400)
    await publish_versions(storage)


@functools.cache
def shipped() -> Packed:
    """The flows directory as `kvisa content publish` packs it (packed once: it takes 0.2 s)."""
    return pack(flows_dir(), Catalogs())[0]


async def publish_versions(storage: Storage) -> None:
    """Three published versions: the shipped flows, an edit of them, and a rollback to the
    first (so the current version, 3, serves the shipped flows)."""
    first = shipped()
    policy = first.files["policy"] + "\n# checked against the guide again\n"
    second = Packed({**first.files, "policy": policy}, first.zh)
    published = [
        (first, "staff:mei", "the guide of 2026", None),
        (second, "http", "李老师: 年龄规定 \u2028 again", None),
        (first, "staff:li", "back to 1", 1),
    ]
    for packed, author, note, rollback_of in published:
        await storage.publish_content(
            packed.to_bytes(),
            author=author,
            note=note,
            sha256=packed.sha256,
            published_at=time.time(),  # finer than the file's milliseconds
            rollback_of=rollback_of,
        )


@dataclass
class Snapshot:
    """Everything a store keeps; values and claims with the Unix time they expire (what a
    store keeps is the time left, which moves on); content versions with their time to the
    millisecond (as an export file has it) and the current id."""

    records: dict[str, JSON]
    values: dict[str, tuple[bytes, float | None]]
    claims: dict[str, float]
    content: list[tuple[JSON, bytes]]
    current: int | None

    def assert_same_as(self, other: Snapshot, slack: float = 2.0) -> None:
        """The same records and values, exactly; the same expiries within `slack` seconds."""
        assert self.records == other.records
        assert self.values.keys() == other.values.keys()
        for name, (value, expires) in self.values.items():
            other_value, other_expires = other.values[name]
            assert value == other_value, name
            if expires is None or other_expires is None:
                assert expires is other_expires, name
            else:
                assert abs(expires - other_expires) < slack, name
        assert self.claims.keys() == other.claims.keys()
        for name, expires in self.claims.items():
            assert abs(expires - other.claims[name]) < slack, name
        assert self.content == other.content
        assert self.current == other.current


async def snapshot(storage: Storage) -> Snapshot:
    def expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.time() + ttl

    content = []
    for version in await storage.content_versions():
        stored = await storage.content_version(version.id)
        assert stored is not None and stored[0] == version
        seen = {**version.to_json(), "published_at": unix_timestamp(version.published_at)}
        content.append((seen, stored[1]))
    return Snapshot(
        {str(k): r.data async for k, r in storage.records()},
        {v.name: (v.value, expiry(v.ttl)) async for v in storage.values()},
        {c.name: time.time() + c.ttl async for c in storage.claims()},
        content,
        await storage.current_content_id(),
    )
