"""The queue and the runner on both storage backends: a crash mid-send is never repeated, WeChat
users outside the 48-hour window are counted apart, a cancel stops it, a second process does
not deliver while another leads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.runner import BroadcastRunner
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.clock import FixedClock
from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer
from kvisa.errors import Undeliverable
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.broadcasts.conftest import applicant
from tests.support import NOON_SHANGHAI, content

FLOWS, CATALOGS = content()
FAST = BroadcastSettings(poll_interval=0.05, progress_interval=0.05)


@dataclass
class Platform:
    """Records what each user was sent; a `gate` holds sends until opened."""

    sent: list[UserKey] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        assert news
        await self.gate.wait()
        if user.channel == "wechat" and user.id.startswith("late"):
            raise Undeliverable("outside the window")
        self.sent.append(user)


@pytest.fixture(params=["sqlite", "redis"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        async with SqliteStorage(tmp_path / "kvisa.db") as store:
            yield store
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        async with RedisStorage.from_url(url, prefix=prefix) as redis_store:
            yield redis_store


def runner(storage: Storage, platform: Platform) -> BroadcastRunner:
    senders = {"telegram": platform.send, "wechat": platform.send}
    return BroadcastRunner(
        BroadcastStore(storage),
        CATALOGS,
        FixedClock(NOON_SHANGHAI),
        senders,
        {"telegram": Pacer(1000.0), "wechat": Pacer(1000.0)},
        FAST,
    )


async def queue(storage: Storage, users: list[UserKey]) -> Broadcast:
    for user in users:
        await storage.put(user, applicant(), expected_version=0)
    composer = Composer(FLOWS, CATALOGS, BroadcastStore(storage), FixedClock(NOON_SHANGHAI))
    return await composer.create("New rule.", "新规定。", Segment(), author="cli")


async def finished(store: BroadcastStore, broadcast_id: str) -> Broadcast:
    async with asyncio.timeout(20):
        while (b := await store.get(broadcast_id)) is None or b.status not in ("done", "cancelled"):
            await asyncio.sleep(0.02)
    return b


async def test_a_send_interrupted_by_a_crash_is_never_repeated(storage: Storage) -> None:
    users = [UserKey("telegram", str(n)) for n in range(5)]
    broadcast = await queue(storage, users)
    store = BroadcastStore(storage)
    states = await store.chunk(broadcast.id, 0)
    states["telegram:0"], states["telegram:1"] = "sent", "sending"  # as a killed process left them
    await store.save_chunk(broadcast.id, 0, states)
    platform = Platform()
    service = runner(storage, platform)
    await service.start()
    try:
        done = await finished(store, broadcast.id)
    finally:
        await service.stop()
    assert sorted(platform.sent, key=str) == users[2:]
    assert done.counts == {"sent": 4, "uncertain": 1} and done.remaining == 0


async def test_wechat_users_outside_the_window_are_counted_apart(storage: Storage) -> None:
    users = [UserKey("wechat", "oNear"), UserKey("wechat", "late1"), UserKey("telegram", "9")]
    broadcast = await queue(storage, users)
    old = applicant(last_seen="2026-11-20T00:00:00+00:00")  # five days ago
    await storage.put(UserKey("wechat", "oOld"), old, expected_version=0)
    store = BroadcastStore(storage)
    service = runner(storage, Platform())
    await service.start()
    try:
        done = await finished(store, broadcast.id)
    finally:
        await service.stop()
    assert done.counts == {"sent": 2, "undeliverable": 1}  # late1 refused by the platform
    assert done.per_channel == {"wechat": 2, "telegram": 1}


async def test_a_cancelled_broadcast_stops_and_a_stopped_one_resumes(storage: Storage) -> None:
    users = [UserKey("telegram", str(n)) for n in range(30)]
    broadcast = await queue(storage, users)
    store = BroadcastStore(storage)
    platform = Platform()
    platform.gate.clear()
    first = runner(storage, platform)
    await first.start()
    await asyncio.sleep(0.2)  # sends are held on the wire
    platform.gate.set()
    await first.stop()  # the sends in flight finish and are recorded
    after_stop = len(platform.sent)
    assert after_stop <= FAST.concurrency
    second = runner(storage, platform)
    await store.cancel(broadcast.id)
    await second.start()
    try:
        done = await finished(store, broadcast.id)
    finally:
        await second.stop()
    assert done.status == "cancelled" and len(platform.sent) == after_stop
    assert done.counts.get("pending") == 30 - after_stop


@pytest.mark.redis
async def test_only_the_leader_delivers(redis_url: str, redis_prefix: str) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        broadcast = await queue(storage, [UserKey("telegram", str(n)) for n in range(40)])
        platforms = [Platform(), Platform()]
        services = [
            BroadcastRunner(
                BroadcastStore(storage),
                CATALOGS,
                FixedClock(NOON_SHANGHAI),
                {"telegram": p.send},
                {"telegram": Pacer(1000.0)},
                FAST,
                redis_url=redis_url,
                redis_prefix=redis_prefix,
                leader_ttl=1.0,
            )
            for p in platforms
        ]
        for service in services:
            await service.start()
        try:
            await finished(BroadcastStore(storage), broadcast.id)
        finally:
            for service in services:
                await service.stop()
        assert sorted(len(p.sent) for p in platforms) == [0, 40]
