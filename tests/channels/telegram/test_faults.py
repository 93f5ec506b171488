"""What Telegram throws at a bot: flood control, blocked users, network faults, bad updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.telegram import TelegramChannel
from kvisa.bot.channels.telegram.api import LeanSession, Retry
from kvisa.bot.clock import FixedClock
from kvisa.bot.messages import Outbound, UiOption
from kvisa.bot.settings import Settings
from kvisa.errors import Blocked, ChannelError, RateLimited
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.telegram.conftest import Serve
from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.support import NOON_SHANGHAI, content, engine_on


async def test_blocked_user_is_marked_inactive_and_gets_nothing_more(serve: Serve) -> None:
    tg = await serve()
    user = tg.user(3001)
    await user.send("/start")
    await user.press("agree")
    tg.fake.block(3001)
    await user.send("/help")  # two replies due: the help, then the question again
    assert [c.status for c in tg.fake.calls_to("sendMessage", 3001)][-1:] == [403]
    assert (
        len([c for c in tg.fake.calls_to("sendMessage", 3001) if c.status == 403]) == 1
    )  # stopped at once
    assert (await user.state() or {})["inactive"] is True
    calls = len(tg.fake.calls)
    with pytest.raises(Blocked):
        await tg.channel.send(UserKey("telegram", "3001"), [Outbound("A reminder")])
    assert len(tg.fake.calls) == calls  # not even tried
    tg.fake.unblock(3001)
    replies = await user.send("/start")  # they are back
    assert replies and (await user.state() or {})["inactive"] is False


async def test_a_429_storm_delivers_every_message_in_order_after_retry_after(serve: Serve) -> None:
    tg = await serve()
    calm, stormy = tg.user(3002), [tg.user(3003), tg.user(3004), tg.user(3005)]
    for user in [calm, *stormy]:
        await user.send("/start lingang")
    for user in stormy:  # the edit of the consent question and both replies: each refused once
        tg.fake.flood(user.chat_id, refusals=3, retry_after=1)
    for user in [calm, *stormy]:  # every user in one batch, handled concurrently
        tg.fake.push(
            tg.fake.callback_update(user.last_prompt, next(d for _, d in user.last_prompt.buttons))
        )
    await tg.submit(tg.fake.message_update(calm.chat_id, "/mydata"))
    expected = [(m.kind, m.text, m.option_ids) for m in calm.messages[:-2]]
    for user in stormy:
        assert [(m.kind, m.text, m.option_ids) for m in user.messages] == expected
        assert [(c.method, c.status) for c in tg.fake.calls if c.chat_id == user.chat_id][-6:] == [
            ("editMessageText", 429),
            ("editMessageText", 200),
            ("sendMessage", 429),
            ("sendMessage", 200),
            ("sendMessage", 429),
            ("sendMessage", 200),
        ]
    assert tg.fake.early_retries == 0  # nobody came back before retry_after was over


async def test_network_faults_and_server_errors_are_retried(serve: Serve) -> None:
    tg = await serve()
    tg.fake.fail("sendMessage", 1, how="drop")
    tg.fake.fail("sendMessage", 1, how="502")
    tg.fake.fail("answerCallbackQuery", 1, how="500")
    user = tg.user(3006)
    await user.send("/start")
    await user.press("agree")
    assert [m.option_ids[:1] for m in user.messages if m.reply_markup] == [
        ["none"]
    ]  # the degree question
    assert [c.status for c in tg.fake.calls_to("sendMessage", 3006)][:3] == [0, 502, 200]
    assert [c.status for c in tg.fake.calls_to("answerCallbackQuery")] == [500, 200]


async def test_polling_survives_a_failing_getupdates_and_an_unreadable_update(serve: Serve) -> None:
    tg = await serve()
    tg.fake.fail("getUpdates", 1, how="500")
    tg.fake.push({"message": {"text": 5}})  # no date, no chat: not an Update
    replies = await tg.user(3007).send("/start")
    assert replies and replies[-1].option_ids == ["agree", "decline"]


async def test_polling_waits_out_flood_control_on_getupdates(serve: Serve) -> None:
    tg = await serve()
    tg.fake.fail("getUpdates", 1, how="429")
    replies = await tg.user(3012).send("/start")
    assert replies and 429 in [c.status for c in tg.fake.calls_to("getUpdates")]


async def test_group_chats_are_ignored(serve: Serve) -> None:
    tg = await serve()
    await tg.submit(tg.fake.message_update(-100123, "/start", chat_type="supergroup"))
    assert not tg.fake.calls_to("sendMessage")


async def test_long_proactive_message_is_split_at_line_boundaries(serve: Serve) -> None:
    tg = await serve()
    lines = [f"{n:03d} " + "deadline " * 30 for n in range(60)]  # about 16,500 characters
    await tg.channel.send(
        UserKey("telegram", "3008"), [Outbound("\n".join(lines), (UiOption("ok", "OK"),), 1)]
    )
    sent = tg.fake.messages[3008]
    assert len(sent) == 5 and all(m.text and len(m.text) <= 4096 for m in sent)
    assert "\n".join(m.text or "" for m in sent) == "\n".join(lines)
    assert [m.reply_markup is not None for m in sent] == [False] * 4 + [True]


# --- errors at the boundary, with a channel built by hand for a short retry budget -------------


@pytest.fixture
async def channel(fake: FakeBotApi, tmp_path: Path) -> AsyncIterator[TelegramChannel]:
    _, catalogs = content()
    settings = Settings.from_env({"KVISA_DATA_DIR": str(tmp_path)})
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        services = Services(settings, engine_on(storage), catalogs, FixedClock(NOON_SHANGHAI))
        bot = Bot(TOKEN, session=LeanSession(api=TelegramAPIServer.from_base(fake.base_url)))
        channel = TelegramChannel(services, bot, retry=Retry(attempts=2, base=0.01))
        yield channel
        await channel.stop()


async def test_send_raises_rate_limited_when_flood_control_outlasts_the_retries(
    fake: FakeBotApi, channel: TelegramChannel
) -> None:
    fake.flood(3009, refusals=5, retry_after=1, in_a_row=True)
    with pytest.raises(RateLimited) as error:
        await channel.send(UserKey("telegram", "3009"), [Outbound("Your deadline is near")])
    assert error.value.retry_after == 1
    assert fake.early_retries == 0


async def test_send_raises_channel_error_when_the_network_stays_down(
    fake: FakeBotApi, channel: TelegramChannel
) -> None:
    fake.fail("sendMessage", 2, how="drop")
    with pytest.raises(ChannelError) as error:
        await channel.send(UserKey("telegram", "3010"), [Outbound("Your deadline is near")])
    assert type(error.value) is ChannelError and TOKEN not in str(error.value)


async def test_send_to_a_user_who_blocked_the_bot_raises_blocked(
    fake: FakeBotApi, channel: TelegramChannel
) -> None:
    fake.block(3011)
    with pytest.raises(Blocked):
        await channel.send(UserKey("telegram", "3011"), [Outbound("Your deadline is near")])


async def test_send_to_a_user_of_another_channel_is_refused(channel: TelegramChannel) -> None:
    with pytest.raises(ChannelError):
        await channel.send(UserKey("wechat", "oAbC"), [Outbound("hello")])
