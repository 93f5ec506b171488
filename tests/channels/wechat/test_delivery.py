"""Replies that cannot go passively (a slow turn), and pushes inside and outside WeChat's
48-hour window."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat import WeChatChannel
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.channels.wechat.channel import done_by
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Outbound
from kvisa.errors import Blocked, ChannelError
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.conftest import TEMPLATE_ID, Bot, GatedEngine, ServeChannel, StartBot
from tests.support import content

CUSTOM, TEMPLATE = "/cgi-bin/message/custom/send", "/cgi-bin/message/template/send"
REMINDER = Outbound("Reminder: apply for your work permit\nDeadline: 2026-12-04 (Friday)")


def channel_with(**options: float) -> Callable[[Services], WeChatChannel]:
    """Builds the WeChat channel as the server does, with timing `options` of its own."""

    def make(services: Services) -> WeChatChannel:
        settings = services.settings
        assert settings.wechat_app_id and settings.wechat_app_secret
        api = WeChatApi(
            services.engine.storage,
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            settings.wechat_api_base,
        )
        return WeChatChannel(services, api, **options)

    return make


async def test_a_slow_turn_answers_success_then_delivers_by_customer_service_message(
    tmp_path: Path, serve_channel: ServeChannel
) -> None:
    storage = SqliteStorage(tmp_path / "kvisa.db")
    flows, catalogs = content()
    engine = GatedEngine(Engine(flows, catalogs, storage))
    try:
        bot: Bot = await serve_channel(storage, engine, make=channel_with(reply_deadline=0.05))
        user = bot.user()

        reply = await user.say("/start")

        assert reply.status == 200 and reply.fields is None  # "success": no passive reply
        engine.gate.set()
        await bot.api.wait_for(lambda: bool(bot.api.texts_to(user.openid)))
        (late,) = bot.api.texts_to(user.openid)
        assert "1. " in late and "2. " in late  # the consent question with its options
        state = await bot.state(user)
        assert state is not None and state["awaiting"] == {"kind": "consent"}
    finally:
        await storage.close()


async def test_a_reply_that_may_have_come_too_late_is_given_again_to_the_retry(
    tmp_path: Path, serve_channel: ServeChannel
) -> None:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        bot = await serve_channel(storage, make=channel_with(remember_after=0.0))
        user = bot.user()
        await user.say("/start")
        first = await user.say("1")
        state = await bot.state(user)

        again = await user.retry()

        assert again.text == first.text
        assert await bot.state(user) == state


async def agreed_user(bot: Bot) -> UserKey:
    user = bot.user()
    await user.say("/start")
    await user.say("1")
    return UserKey("wechat", user.openid)


async def test_a_push_within_48_hours_goes_as_a_customer_service_message(bot: Bot) -> None:
    user = await agreed_user(bot)
    bot.clock.advance(dt.timedelta(hours=47))

    await bot.channel.send(user, [REMINDER])

    (call,) = bot.api.sent(CUSTOM, user.id)
    assert call.json["msgtype"] == "text"
    assert call.json["text"]["content"] == REMINDER.text
    assert bot.api.sent(TEMPLATE) == []


async def test_a_push_after_48_hours_goes_as_the_reminder_template(bot: Bot) -> None:
    user = await agreed_user(bot)
    bot.clock.advance(dt.timedelta(hours=49))

    await bot.channel.send(user, [REMINDER])

    (call,) = bot.api.sent(TEMPLATE, user.id)
    assert call.json["template_id"] == TEMPLATE_ID
    assert call.json["data"]["keyword1"]["value"].startswith("Reminder")
    assert call.json["data"]["keyword2"]["value"].startswith("Deadline")
    assert all(
        len(field["value"]) <= 20
        for key, field in call.json["data"].items()
        if key.startswith("keyword")
    )
    assert bot.api.sent(CUSTOM) == []


async def test_a_push_wechat_refuses_for_the_window_falls_back_to_the_template(bot: Bot) -> None:
    user = await agreed_user(bot)
    bot.api.refuse_next(CUSTOM, 45015)

    await bot.channel.send(user, [REMINDER])

    assert len(bot.api.sent(TEMPLATE, user.id)) == 1


async def test_a_push_after_48_hours_without_a_template_is_an_error(start_bot: StartBot) -> None:
    bot = await start_bot(WECHAT_TEMPLATE_REMINDER="")
    user = await agreed_user(bot)
    bot.clock.advance(dt.timedelta(days=3))

    with pytest.raises(ChannelError):
        await bot.channel.send(user, [REMINDER])


async def test_a_push_to_an_unfollower_raises_blocked_without_calling_wechat(bot: Bot) -> None:
    follower = bot.user()
    await follower.say("/start")
    await follower.say("1")
    await follower.event("unsubscribe")

    with pytest.raises(Blocked):
        await bot.channel.send(UserKey("wechat", follower.openid), [REMINDER])
    assert bot.api.calls == []


async def test_wechat_saying_the_user_unfollowed_raises_blocked(bot: Bot) -> None:
    user = await agreed_user(bot)
    bot.clock.advance(dt.timedelta(days=3))
    bot.api.refuse_next(TEMPLATE, 43004)

    with pytest.raises(Blocked):
        await bot.channel.send(user, [REMINDER])


async def test_a_long_push_is_split_under_wechats_text_limit(bot: Bot) -> None:
    user = await agreed_user(bot)
    long = Outbound("\n".join(f"第{n}项：准备学位证书的公证认证件" for n in range(200)))

    await bot.channel.send(user, [long])

    texts = [c.json["text"]["content"] for c in bot.api.sent(CUSTOM, user.id)]
    assert len(texts) > 1
    assert all(len(text.encode()) <= 2048 for text in texts)
    assert "\n".join(texts) == long.text


async def test_a_push_to_someone_without_a_conversation_is_refused(bot: Bot) -> None:
    with pytest.raises(ChannelError):
        await bot.channel.send(UserKey("wechat", "o_never_wrote"), [REMINDER])
    assert bot.api.calls == []


async def test_done_by_tells_whether_a_task_finished_in_time_and_never_stops_it() -> None:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    async def turn() -> str:
        await release.wait()
        return "replies"

    quick = asyncio.create_task(asyncio.sleep(0, "replies"))
    assert await done_by(quick, loop.time() + 5)
    slow = asyncio.create_task(turn())
    assert not await done_by(slow, loop.time() + 0.02)
    release.set()
    assert await slow == "replies"  # it went on after the deadline
    assert await done_by(slow, loop.time() - 1)  # done already: whatever the deadline


async def test_done_by_cancelled_leaves_the_task_running_and_nothing_behind() -> None:
    release = asyncio.Event()
    turn = asyncio.create_task(release.wait())
    waiting = asyncio.create_task(done_by(turn, asyncio.get_running_loop().time() + 60))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not turn.done()
    release.set()
    assert await turn is True
