"""Real processes (`python -m tests.reminders.worker`) on one Redis: exactly-once delivery
across a SIGKILL, and one scheduler among several processes with failover."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kvisa.bot.coordinator import RedisCoordinator
from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage
from tests.reminders.conftest import MORNING, session

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
KEY = "|deadline|work_permit_apply|2026-12-04|7"  # each user's 7-day reminder, due at MORNING[7]


@dataclass
class Sink:
    """The platform: records each message it accepts. With `hold_after`, requests beyond that
    many are held unanswered and not recorded (the platform never took them)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    hold_after: int | None = None
    # Requests of a killed process that were still on the wire are never accepted: the kill
    # lands between deliveries, as far as the platform is concerned.
    dead: set[int] = field(default_factory=set)
    held: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("pid") in self.dead:
            return web.Response(status=503)
        if self.hold_after is not None and len(self.received) >= self.hold_after:
            self.held += 1
            await self.release.wait()
            return web.Response(status=503)
        self.received.append(body)
        return web.json_response({"ok": True})

    def per_user(self) -> Counter[str]:
        return Counter(body["user"] for body in self.received)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    sink = Sink()
    app = web.Application()
    app.router.add_post("/send", sink.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/send"  # type: ignore[union-attr]
    yield sink
    sink.release.set()
    await runner.cleanup()


@pytest.fixture
def workers(
    redis_url: str, redis_prefix: str, sink: Sink
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "KVISA_TEST_REDIS_URL": redis_url,
            "WORKER_PREFIX": redis_prefix,
            "WORKER_SINK": sink.url,
            "WORKER_CLOCK": MORNING[7].isoformat(),
            "KVISA_REMINDER_LEASE": "8",
            "KVISA_REMINDER_RETRY": "0.5",
            "KVISA_REMINDER_LEADER_TTL": "1",
            "KVISA_REMINDER_DRAIN_INTERVAL": "0.05",
            "KVISA_RATE_TELEGRAM": "200",
            "KVISA_LOG_LEVEL": "ERROR",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.reminders.worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


async def ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
    assert line.strip() == b"ready", line


async def exited(process: subprocess.Popen[bytes]) -> int:
    """Wait for a worker to end without blocking this loop, which serves the sink it may still be
    talking to while it stops."""
    return await asyncio.to_thread(process.wait, 30)


async def until(condition: Callable[[], Any], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


@pytest.fixture
async def storage(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStorage]:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as store:
        yield store


async def users_due(storage: RedisStorage, prefix: str, count: int) -> list[UserKey]:
    """`count` users, each with a reminder due now, queued for scheduling as turns would."""
    users = [UserKey("telegram", str(5000 + n)) for n in range(count)]
    queue = RedisCoordinator(storage.client, prefix, ttl=1)
    for user in users:
        await storage.put(user, session(), expected_version=0)
        await queue.request(user)
    return users


async def ledgered(storage: RedisStorage, users: list[UserKey]) -> set[UserKey]:
    done = set()
    for user in users:
        record = await storage.get(user)
        if record and f"{user}{KEY}" in record.data.get("reminders_sent", {}):
            done.add(user)
    return done


async def test_sigkill_between_deliveries_neither_duplicates_nor_loses(
    storage: RedisStorage,
    redis_prefix: str,
    sink: Sink,
    workers: Callable[[], subprocess.Popen[bytes]],
) -> None:
    users = await users_due(storage, redis_prefix, 12)
    sink.hold_after = 5
    first = workers()
    await ready(first)

    async def five_done_sixth_in_flight() -> bool:
        return sink.held >= 1 and len(await ledgered(storage, users)) == 5

    await until(five_done_sixth_in_flight)
    first.send_signal(signal.SIGKILL)
    await exited(first)
    sink.dead.add(first.pid)
    sink.hold_after = None
    sink.release.set()  # the killed process's held requests go nowhere
    second = workers()
    await ready(second)

    async def all_done() -> bool:
        return len(await ledgered(storage, users)) == len(users) and len(sink.received) >= len(
            users
        )

    await until(all_done)
    second.send_signal(signal.SIGTERM)
    assert await exited(second) == 0
    assert sink.per_user() == Counter({str(user): 1 for user in users})  # no duplicate, no loss
    by_process = Counter(body["pid"] for body in sink.received)
    assert by_process == {first.pid: 5, second.pid: len(users) - 5}


async def test_two_processes_run_one_scheduler_and_the_survivor_takes_over(
    storage: RedisStorage,
    redis_prefix: str,
    sink: Sink,
    workers: Callable[[], subprocess.Popen[bytes]],
) -> None:
    first, second = workers(), workers()
    await ready(first)
    await ready(second)
    lock = f"{redis_prefix}:reminders:leader"
    holder = await storage.client.get(lock)
    assert holder is not None
    before = await users_due(storage, redis_prefix, 3)
    await until(lambda: asyncio.sleep(0, len(sink.received) == 3))
    (leader_pid,) = {body["pid"] for body in sink.received}  # one scheduler delivered them all
    leader = first if leader_pid == first.pid else second
    survivor = second if leader is first else first
    leader.send_signal(signal.SIGKILL)
    await exited(leader)

    async def taken_over() -> bool:
        value = await storage.client.get(lock)
        return value is not None and value != holder

    await until(taken_over)
    after = [UserKey("telegram", str(6000 + n)) for n in range(3)]
    queue = RedisCoordinator(storage.client, redis_prefix, ttl=1)
    for user in after:
        await storage.put(user, session(), expected_version=0)
        await queue.request(user)
    await until(lambda: asyncio.sleep(0, len(sink.received) == 6))
    assert [body["pid"] for body in sink.received[3:]] == [survivor.pid] * 3
    assert sink.per_user() == Counter({str(user): 1 for user in before + after})
    survivor.send_signal(signal.SIGTERM)
    assert await exited(survivor) == 0
