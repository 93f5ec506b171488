"""The leader lock of RedisCoordinator (redis-py's Lock) on a real Redis: one leader, a clean
hand-over, stepping down when the lock is lost, letting go when the scheduler cannot start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from kvisa.bot.coordinator import RedisCoordinator

pytestmark = pytest.mark.redis
TTL = 1.5  # renewed every 0.5 s: a loaded machine stalls less than 1 s


class Hooks:
    """What the service does on election and deposition, recorded."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[str] = []
        self.fail = fail

    async def elected(self) -> None:
        self.events.append("elected")
        if self.fail:
            raise RuntimeError("the scheduler could not start")

    async def deposed(self) -> None:
        self.events.append("deposed")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def coordinators(client: Redis, redis_prefix: str) -> AsyncIterator[Callable[[Hooks], Any]]:
    started: list[RedisCoordinator] = []

    async def start(hooks: Hooks) -> RedisCoordinator:
        coordinator = RedisCoordinator(client, redis_prefix, ttl=TTL)
        started.append(coordinator)
        await coordinator.start(hooks.elected, hooks.deposed)
        return coordinator

    yield start
    for coordinator in started:
        await coordinator.stop()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_one_process_leads_and_a_clean_stop_hands_over_at_once(
    coordinators: Callable[[Hooks], Any], client: Redis
) -> None:
    first_hooks, second_hooks = Hooks(), Hooks()
    first = await coordinators(first_hooks)
    second = await coordinators(second_hooks)
    assert first.leader and not second.leader
    assert await client.get(first.lock_key) == first.identity.encode()
    await asyncio.sleep(1.5 * TTL)  # past the ttl, so renewed meanwhile: still the leader
    assert first.leader and not second.leader
    await first.stop()
    assert first_hooks.events == ["elected", "deposed"]
    assert await client.get(first.lock_key) is None  # released, not left to expire
    await until(lambda: second.leader)
    assert second_hooks.events == ["elected"]


async def test_a_leader_that_lost_its_lock_steps_down(
    coordinators: Callable[[Hooks], Any], client: Redis
) -> None:
    hooks = Hooks()
    leader = await coordinators(hooks)
    await client.set(leader.lock_key, "another process")  # after a stall longer than the ttl
    await until(lambda: not leader.leader)
    assert hooks.events == ["elected", "deposed"]
    assert await client.get(leader.lock_key) == b"another process"


async def test_a_process_whose_scheduler_cannot_start_lets_the_lock_go(
    coordinators: Callable[[Hooks], Any], client: Redis
) -> None:
    hooks = Hooks(fail=True)
    coordinator = await coordinators(hooks)
    assert not coordinator.leader and hooks.events == ["elected", "deposed"]
    assert await client.get(coordinator.lock_key) is None
