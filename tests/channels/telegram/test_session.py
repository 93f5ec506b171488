"""LeanSession against aiogram's own AiohttpSession: the same requests, lighter answers; and
why polling reads raw updates (aiogram's getUpdates fails a batch on one bad update)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import Default, DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetUpdates,
    SendDocument,
    SendMessage,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from hypothesis import given
from hypothesis import strategies as st

from kvisa.bot.channels.telegram.api import GetRawUpdates, LeanSession, plain
from tests.channels.telegram.fake_api import TOKEN, Call, FakeBotApi

DEFAULTS = DefaultBotProperties(protect_content=True)  # one default that is set, the rest None
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Master's", callback_data="3:master")]]
)
METHODS: list[TelegramMethod[Any]] = [
    SendMessage(chat_id=4001, text="Your highest degree?", reply_markup=KEYBOARD),
    EditMessageText(chat_id=4001, message_id=99, text="Your highest degree? ✅ Master's"),
    AnswerCallbackQuery(callback_query_id="not-open"),
    SendDocument(
        chat_id=4001,
        document=BufferedInputFile(b"BEGIN:VCALENDAR", "kvisa.ics"),
        caption="Your deadlines",
    ),
    SetMyCommands(commands=[BotCommand(command="start", description="Start")], language_code="zh"),
    SetWebhook(url="https://bot.example/telegram", secret_token="s", allowed_updates=["message"]),
    DeleteWebhook(drop_pending_updates=False),
]


@asynccontextmanager
async def bot_on(fake: FakeBotApi, session: type[AiohttpSession]) -> AsyncIterator[Bot]:
    bot = Bot(
        TOKEN, session=session(api=TelegramAPIServer.from_base(fake.base_url)), default=DEFAULTS
    )
    try:
        yield bot
    finally:
        await bot.session.close()


def as_sent(call: Call) -> dict[str, Any]:
    """A call's parameters as the Bot API reads them: a form carries every top-level value as
    text (5 as "5", True as "true"), JSON carries them typed."""
    params = {
        key: value if isinstance(value, str | dict | list) else json.dumps(value)
        for key, value in call.params.items()
    }
    files = {name: (f.filename, f.data) for name, f in call.files.items()}
    for key, value in params.items():  # a file's form field name is random: name it by field
        if isinstance(value, str) and value.startswith("attach://"):
            params[key], files = "attach://", {key: files[value.removeprefix("attach://")]}
    return {"method": call.method, "params": params, "files": files}


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__api_method__)
async def test_lean_session_sends_what_aiogram_sends_and_fails_alike(
    fake: FakeBotApi, method: TelegramMethod[Any]
) -> None:
    outcomes = []
    for session in (AiohttpSession, LeanSession):
        async with bot_on(fake, session) as bot:
            try:
                await bot(method)
                outcomes.append("ok")
            except TelegramAPIError as exc:
                outcomes.append(type(exc).__name__)
    stock, lean = fake.calls
    assert as_sent(lean) == as_sent(stock)
    sends = method.__api_method__.startswith("send")
    assert as_sent(lean)["params"].get("protect_content") == ("true" if sends else None)  # default
    assert outcomes[0] == outcomes[1]


async def test_lean_session_hands_back_the_result_as_json(fake: FakeBotApi) -> None:
    method = SendMessage(chat_id=4002, text="Hello")
    async with bot_on(fake, AiohttpSession) as bot:
        stock = await bot(method)
    async with bot_on(fake, LeanSession) as bot:
        lean: Any = await bot(method)
    assert isinstance(stock, Message) and isinstance(lean, dict)
    assert lean["message_id"] == stock.message_id + 1 and lean["text"] == stock.text


async def test_aiogram_getupdates_fails_a_whole_batch_on_one_unreadable_update(
    fake: FakeBotApi,
) -> None:
    """Why polling is ours and asks for GetRawUpdates: aiogram's GetUpdates (which its
    Dispatcher polls with) reads the batch as one, so one update it cannot read fails every
    call, and the offset never passes it."""
    bad = fake.push({"message": {"text": 5}})
    good = fake.push(fake.message_update(4003, "/start"))
    async with bot_on(fake, AiohttpSession) as bot:
        with pytest.raises(ClientDecodeError):
            await bot(GetUpdates(timeout=0))
    for session in (AiohttpSession, LeanSession):
        async with bot_on(fake, session) as bot:
            batch = await bot(GetRawUpdates(timeout=0))
        assert [raw["update_id"] for raw in batch] == [bad, good]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from([Default("protect_content"), Default("parse_mode")]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(value=st.dictionaries(st.text(), JSON_VALUES, max_size=4) | st.lists(JSON_VALUES))
def test_plain_reads_a_value_as_aiogram_prepares_it(value: dict[str, Any] | list[Any]) -> None:
    bot = Bot(TOKEN, default=DEFAULTS)
    assert plain(value, bot) == json.loads(bot.session.prepare_value(value, bot=bot, files={}))
