"""`kvisa serve` with Telegram (against the fake Bot API) and reminders on its default
embedded backend (SQLite job store): a reminder reaches the user, and its button works."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from kvisa.bot.channels.telegram import TelegramChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.reminders.conftest import session
from tests.support import free_port

CHAT = 4242


async def test_a_reminder_reaches_a_telegram_user_and_done_records_the_step(tmp_path: Path) -> None:
    async with FakeBotApi() as fake:
        settings = Settings.from_env(
            {
                "KVISA_DATA_DIR": str(tmp_path),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(free_port()),
            }
        )
        server = Server(
            settings, clock=FixedClock(dt.datetime(2026, 11, 25, 1, 0, 30, tzinfo=dt.UTC))
        )
        await server.start()
        try:
            assert server.storage and server.reminders
            user = UserKey("telegram", str(CHAT))
            await server.storage.put(
                user, session(events={"entered": dt.date(2026, 11, 17)}), expected_version=0
            )
            await server.reminders.coordinator.request(
                user
            )  # as the turn reporting the entry would
            await fake.wait_for(lambda: fake.messages.get(CHAT), what="the 7-day reminder")
            (reminder,) = fake.messages[CHAT]
            assert [data for _, data in reminder.buttons] == [
                ":rem:done:work_permit_apply",
                ":rem:later:work_permit_apply",
            ]
            assert reminder.text and "— — —" in reminder.text
            channel = server.channels[0]
            assert isinstance(channel, TelegramChannel)
            await fake.confirmed(
                fake.push(fake.callback_update(reminder, ":rem:done:work_permit_apply"))
            )
            await channel.idle()
            record = await server.storage.get(user)
            assert record and record.data["events"]["work_permit_submitted"] == "2026-11-25"
        finally:
            await server.stop()
