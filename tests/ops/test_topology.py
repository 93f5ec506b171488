"""The production shape on one machine: a private redis-server with its append-only file, two
`kvisa serve` replicas, the fake Telegram and WeChat posting updates through a round-robin
front (the proxy, and the platforms sending again what a replica refused).

Mid-interview the replica that does not lead is killed with SIGKILL (and started again, as
the supervisor does), Redis is restarted, and the leader gets SIGTERM while it is sending
reminders: every applicant's interview goes on to the verdict, and every reminder that was
due is delivered exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from kvisa.bot.clock import FixedClock
from kvisa.bot.content.model import Flows
from tests.channels.telegram.fake_api import FakeBotApi
from tests.channels.wechat.callbacks import TOKEN as WECHAT_TOKEN
from tests.channels.wechat.callbacks import WeChatServers, WeChatUser
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi
from tests.ops.conftest import ADMIN_TOKEN, telegram_env
from tests.ops.nodes import ROOT, Front, RedisNode, Replica
from tests.reminders.conftest import MORNING, session
from tests.support import ACADEMIC, content

pytestmark = pytest.mark.redis
GRACE = 15.0
TELEGRAM_USERS = range(9_000_001, 9_000_017)  # 16 through the interview
WECHAT_USERS = [f"o_topology_{n:02d}" for n in range(8)]
REMINDED = range(9_100_001, 9_100_021)  # 20 whose 7-day reminder is due at MORNING[7]
LEADER = 'kvisa_scheduler_leader{scheduler="reminders"}'
STEP_TIMEOUT = 8.0  # seconds a user waits for the bot to move before saying it again
PAUSE = 0.3  # seconds a user takes to answer


def answer_text(flows: Flows, question: str) -> str:
    """What an applicant types for ACADEMIC's answer: an option's English label, or the value."""
    _, catalogs = content()
    value = ACADEMIC[question]
    if value == "_today":
        return "Today"
    spec = next(q for q in flows.questions if q.id == question)
    option = next((o for o in spec.options if o.id == value), None)
    return catalogs["en"](option.label) if option else value


class Applicant:
    """Someone going through the interview: they look at where they stand (their record, as a
    person looks at the last question), answer it, and say it again if the bot does not move."""

    def __init__(self, key: str, say: Callable[[str], Any], store: aioredis.Redis) -> None:
        self.key, self.say, self.store = key, say, store
        self.flows, _ = content()

    async def state(self) -> dict[str, Any] | None:
        while True:
            try:
                data = await self.store.hget(f"kvisa:user:{self.key}", "data")
                return orjson.loads(data) if data else None
            except aioredis.RedisError:  # Redis restarting: look again
                await asyncio.sleep(0.2)

    async def run(self) -> None:
        while True:
            state = await self.state()
            if state is not None and state.get("finished"):
                return
            awaiting = state.get("awaiting") if state else None
            if state is None:
                texts = ["/start", "I agree"]
            elif awaiting and awaiting.get("kind") == "consent":
                texts = ["I agree"]
            elif awaiting and awaiting.get("kind") == "question":
                texts = [answer_text(self.flows, awaiting["id"])]
            else:
                texts = ["/start"]
            for text in texts:
                await self.say(text)
            await self.until_moved(awaiting if state else None)
            await asyncio.sleep(PAUSE)

    async def until_moved(self, awaiting: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP_TIMEOUT
        while loop.time() < deadline:
            state = await self.state()
            if state is not None and (state.get("finished") or state.get("awaiting") != awaiting):
                return
            await asyncio.sleep(0.1)


@pytest.mark.timeout(400)
async def test_kill_restart_and_drain_lose_no_interview_and_no_reminder(
    redis_nodes: Callable[..., RedisNode],
    replicas: Callable[..., Replica],
    fake_telegram: FakeBotApi,
    front_for: Callable[[list[Replica]], Any],
) -> None:
    store = redis_nodes("redis", "--appendonly", "yes", "--appendfsync", "everysec").start()
    client = aioredis.Redis(host="127.0.0.1", port=store.port)
    for number, chat in enumerate(REMINDED, start=1):
        record: dict[str | bytes, bytes | int] = {"v": number, "data": orjson.dumps(session())}
        await client.hset(f"kvisa:user:telegram:{chat}", mapping=record)  # type: ignore[arg-type]
    await client.set("kvisa:version", len(REMINDED))

    wechat_api = FakeWeChatApi()
    await wechat_api.start()
    members: list[Replica] = []
    front: Front = await front_for(members)
    env = telegram_env(fake_telegram, front, store.url) | {
        "WECHAT_TOKEN": WECHAT_TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "WECHAT_API_BASE": wechat_api.base_url,
        "KVISA_PUBLIC_URL": front.base_url,
        "KVISA_SHUTDOWN_GRACE": str(GRACE),
        "KVISA_RATE_TELEGRAM": "5",  # reminders go out over seconds: across the chaos
        "KVISA_REMINDER_LEADER_TTL": "2",
        "KVISA_REMINDER_LEASE": "60",
        "KVISA_REMINDER_RETRY": "2",
        "KVISA_REMINDER_DRAIN_INTERVAL": "0.2",
        "REPLICA_CLOCK": MORNING[7].isoformat(),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "tests.ops.replica"]
    one, two = replicas("one", env, command), replicas("two", env, command)
    members += [one.start(), two.start()]
    try:
        await asyncio.gather(asyncio.to_thread(one.wait_ready), asyncio.to_thread(two.wait_ready))
        async with aiohttp.ClientSession() as http:
            # Signed at the replicas' clock: WeChat's clock agrees with the bot's (replay window).
            wechat = WeChatServers(
                http,
                f"{front.base_url}/wechat",
                APP_ID,
                safe_mode=False,
                clock=FixedClock(MORNING[7]),
            )

            async def telegram_says(chat: int, text: str) -> None:
                assert await fake_telegram.deliver(fake_telegram.message_update(chat, text)) == 200

            async def wechat_says(user: WeChatUser, text: str) -> None:
                assert (await user.say(text)).status == 200

            def on_telegram(chat: int) -> Callable[[str], Awaitable[None]]:
                return lambda text: telegram_says(chat, text)

            def on_wechat(openid: str) -> Callable[[str], Awaitable[None]]:
                follower = WeChatUser(wechat, openid)
                return lambda text: wechat_says(follower, text)

            applicants = [
                Applicant(f"telegram:{chat}", on_telegram(chat), client) for chat in TELEGRAM_USERS
            ] + [
                Applicant(f"wechat:{openid}", on_wechat(openid), client) for openid in WECHAT_USERS
            ]
            interviews = asyncio.gather(*(a.run() for a in applicants))

            await asyncio.sleep(2.0)
            leading = [
                r for r in (one, two) if await asyncio.to_thread(r.metric, LEADER, ADMIN_TOKEN)
            ]
            assert len(leading) == 1
            leader = leading[0]
            follower = two if leader is one else one
            follower.kill()  # SIGKILL mid-interview
            follower.start()

            await asyncio.sleep(1.0)
            store.stop()  # SHUTDOWN: the append-only file flushed
            store.start()
            await asyncio.to_thread(follower.wait_ready)
            await asyncio.to_thread(leader.wait_ready)

            reminded = {
                c.chat_id for c in fake_telegram.calls_to("sendMessage") if c.chat_id in REMINDED
            }
            assert len(reminded) < len(REMINDED), "the reminders were all sent before the drain"
            assert await asyncio.to_thread(leader.terminate, GRACE + 30) == 0  # SIGTERM
            leader.start()

            async with asyncio.timeout(180):
                await interviews
            await fake_telegram.wait_for(
                lambda: (
                    {c.chat_id for c in fake_telegram.calls_to("sendMessage") if c.status == 200}
                    >= set(REMINDED)
                ),
                timeout=60,
                what="every reminder",
            )
            await asyncio.sleep(3.0)  # a second copy of any would come within this

        per_chat = {chat: len(fake_telegram.messages.get(chat, [])) for chat in REMINDED}
        assert per_chat == {chat: 1 for chat in REMINDED}
        for applicant in applicants:
            state = await applicant.state()
            assert state is not None and state["finished"], applicant.key
            assert state["answers"]["degree"] == "master"
        for replica in (one, two):
            assert await asyncio.to_thread(replica.terminate, GRACE + 30) == 0
            for line in replica.log_path.read_text(encoding="utf-8").splitlines():
                json.loads(line)  # one JSON object a line, whatever happened
    finally:
        await client.aclose()
        await wechat_api.stop()
