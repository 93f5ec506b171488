"""GET /metrics: Prometheus text behind the admin token; every family the operators are
promised exists, and moves when its event happens. /healthz and /readyz."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage
from tests.channels.telegram.conftest import Telegram, interview
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.ops.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.reminders.conftest import MORNING, session
from tests.support import ACADEMIC, free_port

FAMILIES = {
    "kvisa_updates": "counter",
    "kvisa_duplicate_updates": "counter",
    "kvisa_turn_seconds": "histogram",
    "kvisa_replies_sent": "counter",
    "kvisa_rate_limited": "counter",
    "kvisa_retries": "counter",
    "kvisa_reminders_due": "counter",
    "kvisa_reminders_sent": "counter",
    "kvisa_reminders_failed": "counter",
    "kvisa_reminders_late": "counter",
    "kvisa_broadcast_messages": "counter",
    "kvisa_storage_errors": "counter",
    "kvisa_typed_questions": "counter",
    "kvisa_queue_depth": "gauge",
    "kvisa_scheduler_leader": "gauge",
}
# The reminder users: their 7-day reminder is due at MORNING[7]; one is blocked, one is late.
ON_TIME, FAILING, LATE = 7_001, 7_002, 7_003


class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample: str, **labels: str) -> float:
        return sum(
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[tuple[Telegram, str]]:
    """`kvisa serve` with Telegram by webhook, SQLite, the admin token, at MORNING[7] with
    three users whose reminder is due (one 2 hours late, so said late)."""
    async with FakeBotApi() as fake:
        port = free_port()
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(tmp_path / "var"),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(port),
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "KVISA_ADMIN_TOKEN": ADMIN_TOKEN,
                "KVISA_ADMINS": "telegram:1",
            }
        )
        clock = FixedClock(MORNING[7] + dt.timedelta(minutes=1))
        server = Server(settings, clock)
        try:
            await server.start()
            yield Telegram(fake, server, webhook=True), f"http://127.0.0.1:{port}"
        finally:
            await server.stop()


async def scrape(http: aiohttp.ClientSession, base: str) -> Scrape:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with http.get(base + "/metrics", headers=headers) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return Scrape(await response.text())


async def test_metrics_want_the_admin_token_when_it_is_set(
    bot: tuple[Telegram, str], http: aiohttp.ClientSession
) -> None:
    _, base = bot
    async with http.get(base + "/metrics") as response:
        assert response.status == 401
    wrong = {"Authorization": "Bearer not-the-admin-token-at-all"}
    async with http.get(base + "/metrics", headers=wrong) as response:
        assert response.status == 401
    families = (await scrape(http, base)).families
    assert {name: families[name].type for name in FAMILIES} == FAMILIES
    assert "process_cpu_seconds" in families


async def test_metrics_are_open_without_an_admin_token(tmp_path: Path) -> None:
    async with FakeBotApi() as fake, aiohttp.ClientSession() as http:
        port = free_port()
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(tmp_path),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(port),
            }
        )
        server = Server(settings)
        await server.start()
        try:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert "kvisa_updates_total" in await response.text()
        finally:
            await server.stop()


async def test_each_family_moves_when_its_event_happens(
    bot: tuple[Telegram, str], http: aiohttp.ClientSession
) -> None:
    tg, base = bot
    before = await scrape(http, base)
    assert before.value("kvisa_scheduler_leader", scheduler="reminders") == 1
    assert before.value("kvisa_scheduler_leader", scheduler="broadcasts") == 1

    # A conversation: updates, turns, replies; a retried delivery of one update.
    user = tg.user(4_001)
    await interview(user, **ACADEMIC)
    update = tg.fake.message_update(4_001, "/help")
    await tg.submit(update)
    await tg.submit(update)  # Telegram sends it again: recognised, not handled twice
    # Flood control on the next reply: a 429, then the call again.
    tg.fake.flood(4_001, refusals=1, retry_after=1)
    await user.send("/help")
    await user.send("Is there any age limit for the K visa?")  # a question in their own words

    # Reminders: three users due at MORNING[7]; one send refused for good, one late.
    assert tg.server.storage is not None and tg.server.reminders is not None
    for chat in (ON_TIME, FAILING, LATE):
        await tg.server.storage.put(UserKey("telegram", str(chat)), session(), expected_version=0)
    late = tg.server.clock
    assert isinstance(late, FixedClock)
    tg.fake.fail("sendMessage", times=1, how="400")  # the first reminder send fails
    await tg.server.reminders.reschedule_all()
    await tg.fake.wait_for(
        lambda: (
            len(
                {c.chat_id for c in tg.fake.calls_to("sendMessage") if c.status == 200}
                & {ON_TIME, FAILING, LATE}
            )
            >= 2
        ),
        timeout=30,
        what="two reminders",
    )
    late.advance(dt.timedelta(hours=2))  # the failed one goes again, late now
    await tg.server.reminders.reschedule_all()
    await tg.fake.wait_for(
        lambda: (
            {c.chat_id for c in tg.fake.calls_to("sendMessage") if c.status == 200}
            >= {ON_TIME, FAILING, LATE}
        ),
        timeout=30,
        what="three reminders",
    )

    # A broadcast through the admin API.
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    news = {"en": "Offices close on Friday.", "zh": "周五办公室关闭。", "segment": "park=lingang"}
    async with http.post(base + "/admin/broadcasts", json=news, headers=headers) as response:
        assert response.status == 201, await response.text()
    async with asyncio.timeout(30):  # sent, and its outcome recorded
        while not (await scrape(http, base)).value(
            "kvisa_broadcast_messages_total", outcome="sent"
        ) > before.value("kvisa_broadcast_messages_total", outcome="sent"):
            await asyncio.sleep(0.1)

    # A storage error: Redis where nothing answers.
    dead = RedisStorage.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StorageError):
        await dead.ping()
    await dead.close()

    after = await scrape(http, base)
    for sample, labels in [
        ("kvisa_updates_total", {"channel": "telegram"}),
        ("kvisa_duplicate_updates_total", {"channel": "telegram"}),
        ("kvisa_turn_seconds_count", {"channel": "telegram"}),
        ("kvisa_replies_sent_total", {"channel": "telegram"}),
        ("kvisa_rate_limited_total", {"channel": "telegram"}),
        ("kvisa_retries_total", {"channel": "telegram"}),
        ("kvisa_reminders_due_total", {}),
        ("kvisa_reminders_sent_total", {"channel": "telegram"}),
        ("kvisa_reminders_failed_total", {"channel": "telegram"}),
        ("kvisa_reminders_late_total", {}),
        ("kvisa_broadcast_messages_total", {"outcome": "sent"}),
        ("kvisa_storage_errors_total", {"backend": "redis"}),
        ("kvisa_typed_questions_total", {"outcome": "answered"}),
    ]:
        assert after.value(sample, **labels) > before.value(sample, **labels), sample
    assert (
        after.value("kvisa_reminders_sent_total", channel="telegram")
        - before.value("kvisa_reminders_sent_total", channel="telegram")
        == 3
    )


async def test_queue_depth_counts_updates_in_flight(
    bot: tuple[Telegram, str], http: aiohttp.ClientSession
) -> None:
    tg, base = bot
    tg.fake.send_delay = 1.0
    for chat in range(4_100, 4_105):
        assert await tg.fake.deliver(tg.fake.message_update(chat, "/start")) == 200
    busy = await scrape(http, base)
    assert busy.value("kvisa_queue_depth", queue="telegram_in_flight") == 5
    await tg.channel.idle()
    idle = await scrape(http, base)
    assert idle.value("kvisa_queue_depth", queue="telegram_in_flight") == 0


async def test_healthz_is_alive_and_readyz_says_why_not_while_draining(
    bot: tuple[Telegram, str], http: aiohttp.ClientSession
) -> None:
    tg, base = bot
    async with http.get(base + "/healthz") as response:
        assert response.status == 200
    async with http.get(base + "/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ready"}
    tg.fake.send_delay = 1.0  # a turn in flight keeps the drain going a second
    assert await tg.fake.deliver(tg.fake.message_update(4_200, "/start")) == 200
    stopping = asyncio.create_task(tg.server.stop())
    await asyncio.sleep(0.2)
    async with http.get(base + "/readyz") as response:
        assert response.status == 503
        answer = await response.json()
        assert answer["status"] == "not ready" and answer["reasons"][0].startswith("draining")
    # A new update is refused so that Telegram sends it again, to a replica that is up.
    assert await tg.fake.deliver(tg.fake.message_update(4_201, "/start")) == 503
    await stopping
    assert tg.fake.calls_to("sendMessage", 4_200)  # the one in flight was answered
    assert not tg.fake.calls_to("sendMessage", 4_201)
