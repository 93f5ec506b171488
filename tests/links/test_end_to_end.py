"""`kvisa serve` with Telegram and WeChat, each against its loopback fake: an applicant starts
on Telegram, answers half the interview, links with /link, finishes on WeChat and reports
entering China there; the 7-day work-permit reminder then arrives on WeChat only, and a
broadcast reaches each applicant once."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import aiohttp

from kvisa.bot.applicants import identities
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.bot.channels.telegram import TelegramChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.channels.wechat.callbacks import TOKEN as WECHAT_TOKEN
from tests.channels.wechat.callbacks import WeChatServers, WeChatUser
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi
from tests.support import ACADEMIC, content, free_port

CHAT, OPENID, OTHER_CHAT = 4242, "oAliceWeChat", 4343
TG, WX = UserKey("telegram", str(CHAT)), UserKey("wechat", OPENID)
# 09:00:30 in Shanghai: the 7-day reminder of an entry on November 17 is due (as in
# tests/reminders/test_telegram.py).
NOW = dt.datetime(2026, 11, 25, 1, 0, 30, tzinfo=dt.UTC)
FLOWS, CATALOGS = content()


def typed(question_id: str, value: str) -> str:
    """What a person types for an answer: the option's label, or the value itself."""
    question = FLOWS.question(question_id)
    option = question.option(value) if question.options else None
    if value == "_today":
        return NOW.date().isoformat()
    return CATALOGS["en"](option.label) if option else value


async def current_question(server: Server) -> str | None:
    assert server.storage is not None
    record = await server.storage.get(TG)
    awaiting = (record.data.get("awaiting") if record else None) or {}
    return awaiting.get("id") if awaiting.get("kind") == "question" else None


async def telegram_says(server: Server, fake: FakeBotApi, text: str, chat: int = CHAT) -> None:
    """Send as the Telegram user and wait until the bot has answered."""
    await fake.confirmed(fake.push(fake.message_update(chat, text)))
    channel = next(c for c in server.channels if isinstance(c, TelegramChannel))
    await channel.idle()


async def test_start_on_telegram_finish_on_wechat_and_get_each_push_once(tmp_path: Path) -> None:
    wechat = FakeWeChatApi()
    await wechat.start()
    port = free_port()
    clock = FixedClock(NOW)
    async with FakeBotApi() as fake, aiohttp.ClientSession() as http:
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(tmp_path),
                "KVISA_HTTP_PORT": str(port),
                "KVISA_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "WECHAT_TOKEN": WECHAT_TOKEN,
                "WECHAT_APP_ID": APP_ID,
                "WECHAT_APP_SECRET": APP_SECRET,
                "WECHAT_API_BASE": wechat.base_url,
            }
        )
        server = Server(settings, clock)
        await server.start()
        try:
            assert server.storage is not None and server.composer is not None
            # Telegram: consent and half the interview.
            await telegram_says(server, fake, "/start")
            await telegram_says(server, fake, "I agree")
            for _ in range(4):
                question = await current_question(server)
                assert question is not None
                await telegram_says(server, fake, typed(question, ACADEMIC[question]))
            assert await current_question(server) == "birth_date"

            # /link: the code as text, and the account's QR code carrying it as a picture.
            await telegram_says(server, fake, "/link")
            sent = fake.messages[CHAT]
            code_text = next(m.text for m in reversed(sent) if m.text and "linking code" in m.text)
            code = re.search(r"\b(\d{6})\b", code_text).group(1)  # type: ignore[union-attr]
            photo = next(m for m in reversed(sent) if m.kind == "photo")
            assert photo.kind == "photo" and photo.file is not None
            assert photo.file.data.endswith(f"TICKET-link-{code}".encode())

            # WeChat: /link CODE as the very first message, then the rest of the interview.
            servers = WeChatServers(http, f"http://127.0.0.1:{port}/wechat", APP_ID, False, clock)
            alice = WeChatUser(servers, OPENID)
            reply = await alice.say(f"/link {code}")
            assert "Linked" in reply.text and "Telegram" in reply.text
            assert any("WeChat" in (m.text or "") for m in fake.messages[CHAT][-1:])
            while (question := await current_question(server)) is not None:
                reply = await alice.say(typed(question, ACADEMIC[question]))
            record = await server.storage.get(TG)
            assert record is not None and record.data["finished"]
            assert identities(TG, record.data) == [TG, WX]

            # Entering China, reported on WeChat: the reminder service plans the work permit.
            telegram_before = len(fake.messages[CHAT])
            await alice.say("/timeline")
            await alice.say(CATALOGS["en"](FLOWS.timeline.event("entered").label))  # type: ignore[union-attr]
            await alice.say("2026-11-17")
            await wechat.wait_for(
                lambda: any("work permit" in t.lower() for t in wechat.texts_to(OPENID)),
                timeout=30,
            )
            reminders = [t for t in wechat.texts_to(OPENID) if "— — —" in t]
            assert len(reminders) == 1
            await asyncio.sleep(0.5)  # nothing else is on its way to Telegram
            assert len(fake.messages[CHAT]) == telegram_before
            record = await server.storage.get(TG)
            assert record is not None
            ledger = list(record.data["reminders_sent"].values())
            assert len(ledger) == 1 and ledger[0].endswith(" wechat")

            # Another applicant, Telegram only; then a broadcast to everyone.
            await telegram_says(server, fake, "/start", OTHER_CHAT)
            await telegram_says(server, fake, "I agree", OTHER_CHAT)
            audience = await server.composer.audience(Segment())
            assert len(audience.recipients) == 2
            assert audience.per_channel == {"wechat": 1, "telegram": 1}
            broadcast = await server.composer.create(
                "Lingang now accepts online applications.",
                "临港现已接受网上申请。",
                Segment(),
                author="cli",
            )
            store = BroadcastStore(server.storage)

            async def done() -> bool:
                current = await store.get(broadcast.id)
                return current is not None and current.status == "done"

            async with asyncio.timeout(30):
                while not await done():
                    await asyncio.sleep(0.05)
            news: list[Any] = [t for t in wechat.texts_to(OPENID) if "Lingang now" in t]
            assert len(news) == 1
            assert not any("Lingang now" in (m.text or "") for m in fake.messages[CHAT])
            assert sum("Lingang now" in (m.text or "") for m in fake.messages[OTHER_CHAT]) == 1
        finally:
            await server.stop()
            await wechat.stop()
