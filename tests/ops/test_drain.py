"""SIGTERM to a real `kvisa serve` while turns are in flight: a rolling restart loses no
update and answers none twice, and the process exits 0 within KVISA_SHUTDOWN_GRACE."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.channels.telegram.fake_api import FakeBotApi
from tests.ops.conftest import ADMIN_TOKEN, log_lines, telegram_env
from tests.ops.nodes import RedisNode, Replica

pytestmark = pytest.mark.redis
GRACE = 15.0
FIRST_CHAT = 5_100_000
IN_FLIGHT = 'kvisa_queue_depth{queue="telegram_in_flight"}'


async def say_start(fake: FakeBotApi, chats: range) -> None:
    """Each chat sends /start once; Telegram posts it to the webhook (the front) and, while
    no replica takes it, again."""
    statuses = await asyncio.gather(
        *(fake.deliver(fake.message_update(chat, "/start")) for chat in chats)
    )
    assert set(statuses) == {200}, Counter(statuses)


def sent_per_chat(fake: FakeBotApi, chats: range) -> Counter[int]:
    return Counter(
        call.chat_id
        for call in fake.calls_to("sendMessage")
        if call.status == 200 and call.chat_id is not None and call.chat_id in chats
    )


async def test_sigterm_mid_turns_finishes_them_and_the_other_replica_takes_the_rest(
    redis_nodes: Callable[..., RedisNode],
    replicas: Callable[..., Replica],
    fake_telegram: FakeBotApi,
    front_for: Callable[[list[Replica]], Any],
) -> None:
    redis = redis_nodes("redis").start()
    members: list[Replica] = []
    front = await front_for(members)
    env = telegram_env(fake_telegram, front, redis.url, KVISA_SHUTDOWN_GRACE=str(GRACE))
    first, second = replicas("first", env).start(), replicas("second", env).start()
    members += [first, second]
    await asyncio.to_thread(first.wait_ready)
    await asyncio.to_thread(second.wait_ready)

    # What one /start is answered with, with nothing in flight.
    await say_start(fake_telegram, range(FIRST_CHAT, FIRST_CHAT + 1))
    await fake_telegram.wait_for(
        lambda: sent_per_chat(fake_telegram, range(FIRST_CHAT, FIRST_CHAT + 1)), what="a reply"
    )
    await asyncio.sleep(0.5)
    answer = sent_per_chat(fake_telegram, range(FIRST_CHAT, FIRST_CHAT + 1))[FIRST_CHAT]

    fake_telegram.send_delay = 1.0  # every reply takes a second: turns stay in flight
    early = range(FIRST_CHAT + 1, FIRST_CHAT + 41)
    late = range(FIRST_CHAT + 41, FIRST_CHAT + 81)
    await say_start(fake_telegram, early)
    in_flight = await asyncio.to_thread(first.metric, IN_FLIGHT, ADMIN_TOKEN)
    assert in_flight > 0

    stopping = asyncio.create_task(asyncio.to_thread(first.terminate, GRACE + 30))
    await asyncio.sleep(0.1)
    status, body = await asyncio.to_thread(first.get, "/readyz")
    assert status == 503 and "draining" in body
    await say_start(fake_telegram, late)  # the first refuses them: the second answers
    assert await stopping == 0

    everyone = range(FIRST_CHAT + 1, FIRST_CHAT + 81)
    await fake_telegram.wait_for(
        lambda: len(sent_per_chat(fake_telegram, everyone)) == len(everyone),
        timeout=60,
        what="every chat answered",
    )
    await asyncio.sleep(2.0)  # a second answer would come within this
    per_chat = sent_per_chat(fake_telegram, everyone)
    assert set(per_chat.values()) == {answer}, per_chat

    lines = log_lines(first.log_path)
    assert any(line["message"].startswith("draining") for line in lines)
    assert lines[-1]["message"] == "stopped"
    assert front.refused > 0  # the late ones did meet the draining replica
    assert await asyncio.to_thread(second.terminate, GRACE + 30) == 0
