"""A replica that starts while its Redis does not answer yet (both come up together, or Redis
restarts as the supervisor restarts the replica) waits for it, then serves; SIGTERM while it
waits ends it cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.channels.telegram.fake_api import FakeBotApi
from tests.ops.conftest import log_lines, telegram_env
from tests.ops.nodes import RedisNode, Replica, wait_until

pytestmark = pytest.mark.redis


async def waiting_for_the_storage(replica: Replica) -> None:
    """Until the replica's log says it waits for a storage that does not answer."""

    def says_so() -> bool:
        lines = log_lines(replica.log_path)
        return any("does not answer at start-up" in line.get("message", "") for line in lines)

    await asyncio.to_thread(wait_until, says_so, 60, "the replica saying it waits for the storage")


async def test_a_replica_waits_for_redis_at_start_up_then_serves(
    redis_nodes: Callable[..., RedisNode],
    replicas: Callable[..., Replica],
    fake_telegram: FakeBotApi,
    front_for: Callable[[list[Replica]], Any],
) -> None:
    redis = redis_nodes("redis")  # a port, nothing listening yet
    members: list[Replica] = []
    front = await front_for(members)
    replica = replicas("early", telegram_env(fake_telegram, front, redis.url)).start()
    members.append(replica)
    await waiting_for_the_storage(replica)
    assert replica.process is not None and replica.process.poll() is None  # still waiting
    redis.start()
    await asyncio.to_thread(replica.wait_ready)
    assert replica.terminate(30) == 0
    assert "Traceback" not in replica.log_path.read_text()


async def test_sigterm_while_waiting_for_redis_exits_cleanly(
    redis_nodes: Callable[..., RedisNode],
    replicas: Callable[..., Replica],
    fake_telegram: FakeBotApi,
    front_for: Callable[[list[Replica]], Any],
) -> None:
    redis = redis_nodes("redis")
    front = await front_for([])
    replica = replicas("early", telegram_env(fake_telegram, front, redis.url)).start()
    await waiting_for_the_storage(replica)
    assert replica.terminate(15) == 0
