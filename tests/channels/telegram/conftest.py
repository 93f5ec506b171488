"""`kvisa serve`'s Telegram part, run in-process against the fake Bot API, and users who chat
with it: `await user.send("/start")`, `await user.press("agree")` return what the bot sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.channels.telegram import TelegramChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import Server
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi, Sent
from tests.support import NOON_SHANGHAI, free_port

WEBHOOK_SECRET = "s3cret-Token_for-tests"


@dataclass
class Telegram:
    """The server under test, the fake it talks to, and how updates reach it."""

    fake: FakeBotApi
    server: Server
    webhook: bool

    @property
    def channel(self) -> TelegramChannel:
        channel = self.server.channels[0]
        assert isinstance(channel, TelegramChannel)
        return channel

    async def submit(self, update: dict[str, Any]) -> int:
        """Hand an update to the bot the way the mode does, and wait until it was handled."""
        if self.webhook:
            status = await self.fake.deliver(update)
            assert status == 200, status
        else:
            await self.fake.confirmed(self.fake.push(update))
        await self.channel.idle()
        return int(update["update_id"])

    def user(self, chat_id: int, language_code: str | None = "en") -> User:
        return User(self, chat_id, language_code)

    async def state(self, chat_id: int) -> dict[str, Any] | None:
        assert self.server.storage is not None
        record = await self.server.storage.get(UserKey("telegram", str(chat_id)))
        return record.data if record else None


@dataclass
class User:
    tg: Telegram
    chat_id: int
    language_code: str | None
    read: int = 0  # how many of the chat's messages were returned already

    @property
    def messages(self) -> list[Sent]:
        return self.tg.fake.messages[self.chat_id]

    @property
    def last_prompt(self) -> Sent:
        return next(m for m in reversed(self.messages) if m.reply_markup)

    def _new(self) -> list[Sent]:
        new = self.messages[self.read :]
        self.read = len(self.messages)
        return new

    async def send(self, text: str) -> list[Sent]:
        await self.tg.submit(self.tg.fake.message_update(self.chat_id, text, self.language_code))
        return self._new()

    async def press(self, option: str, on: Sent | None = None) -> list[Sent]:
        """Press a button, named by option id or label, on a message (by default the latest
        keyboard). Only buttons still on the message can be pressed, as in a real client."""
        message = on or self.last_prompt
        data = next(
            (d for label, d in message.buttons if option in (d.partition(":")[2], label)), None
        )
        if data is None:
            raise AssertionError(f"no button {option!r} on the message; buttons: {message.buttons}")
        await self.tg.submit(self.tg.fake.callback_update(message, data, self.language_code))
        return self._new()

    async def state(self) -> dict[str, Any] | None:
        return await self.tg.state(self.chat_id)


Serve = Callable[..., Awaitable[Telegram]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def serve(fake: FakeBotApi, tmp_path: Path) -> AsyncIterator[Serve]:
    """Start `kvisa serve` (Telegram only) against the fake: polling, or webhook=True."""
    servers: list[Server] = []

    async def start(webhook: bool = False, **env: str) -> Telegram:
        port = free_port()
        values = {
            "KVISA_DATA_DIR": str(tmp_path / f"var{len(servers)}"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": fake.base_url,
            "KVISA_HTTP_PORT": str(port),
        }
        if webhook:
            values |= {
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        server = Server(Settings.from_env(values | env), clock=FixedClock(NOON_SHANGHAI))
        servers.append(server)
        await server.start()
        return Telegram(fake, server, webhook)

    yield start
    for server in reversed(servers):
        await server.stop()


async def interview(user: User, **answers: str) -> None:
    """Consent, then answer each question as it comes: by its button when there is one."""
    await user.send("/start")
    await user.press("agree")
    while (
        (state := await user.state())
        and (awaiting := state["awaiting"])
        and awaiting["kind"] == "question"
    ):
        value = answers[awaiting["id"]]
        if value in user.last_prompt.option_ids:
            await user.press(value)
        else:
            await user.send(value)
        after = await user.state()
        assert after and after["awaiting"] != awaiting, f"{awaiting['id']}={value!r} was refused"
