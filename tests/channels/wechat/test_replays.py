"""Hostile and broken callbacks: a signed request sent again (a replay), a timestamp far from
our clock, 50 KB of broken XML. None reaches the engine, each is logged on one line without
the body; WeChat's own retries (a new nonce, the same MsgId) are still answered."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat import WeChatChannel
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.engine.engine import Engine
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.callbacks import message_xml
from tests.channels.wechat.conftest import Bot, ServeChannel, StartBot, StorageFactory
from tests.channels.wechat.test_callbacks import RecordingEngine
from tests.support import content

MODES = pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])


def kvisa_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("kvisa")]


Serve = Callable[..., Awaitable[tuple[Bot, RecordingEngine]]]


@pytest.fixture
async def serve(tmp_path: Path, serve_channel: ServeChannel) -> AsyncIterator[Serve]:
    """The WeChat channel alone (no reminder service logging as it starts), on SQLite, with
    an engine that notes what reaches it."""
    storages: list[SqliteStorage] = []

    async def start(safe_mode: bool = False, **options: Any) -> tuple[Bot, RecordingEngine]:
        storage = SqliteStorage(tmp_path / f"kvisa-{len(storages)}.db")
        storages.append(storage)
        flows, catalogs = content()
        engine = RecordingEngine(Engine(flows, catalogs, storage))
        return await serve_channel(storage, engine, safe_mode=safe_mode, **options), engine

    yield start
    for storage in storages:
        await storage.close()


@MODES
@pytest.mark.parametrize("skew", [-301, 301, -3600 * 24])
async def test_a_timestamp_more_than_five_minutes_off_is_refused(
    serve: Serve, caplog: pytest.LogCaptureFixture, safe_mode: bool, skew: int
) -> None:
    bot, engine = await serve(safe_mode=safe_mode)
    user = bot.user()
    body, query = bot.servers.envelope(
        message_xml(user.openid, "text", {"Content": "/start", "MsgId": 71}), skew=skew
    )

    with caplog.at_level(logging.INFO):
        reply = await bot.servers.post_raw(body, query)

    assert reply.status == 403
    assert engine.reached == []
    [line] = kvisa_lines(caplog)
    assert line.levelno == logging.WARNING and "our clock" in line.getMessage()


@MODES
@pytest.mark.parametrize("skew", [-300, 300])
async def test_a_timestamp_five_minutes_off_is_still_accepted(
    start_bot: StartBot, safe_mode: bool, skew: int
) -> None:
    bot = await start_bot(safe_mode=safe_mode)
    user = bot.user()
    body, query = bot.servers.envelope(
        message_xml(user.openid, "text", {"Content": "/start", "MsgId": 72}), skew=skew
    )

    reply = await bot.servers.post_raw(body, query)

    assert reply.status == 200 and reply.fields is not None
    assert await bot.state(user) is not None


async def test_the_window_follows_the_injected_clock(bot: Bot) -> None:
    """WeChat signs with the time now; our clock, not the machine's, says what now is."""
    user = bot.user()
    body, query = bot.servers.envelope(message_xml(user.openid, "text", {"Content": "/start"}))
    bot.clock.advance(dt.timedelta(minutes=6))

    assert (await bot.servers.post_raw(body, query)).status == 403


@MODES
async def test_a_replayed_request_is_answered_success_and_does_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture, safe_mode: bool
) -> None:
    bot, engine = await serve(safe_mode=safe_mode)
    user = bot.user()
    body, query = bot.servers.envelope(
        message_xml(user.openid, "text", {"Content": "/start", "MsgId": 73})
    )
    assert (await bot.servers.post_raw(body, query)).fields is not None
    await user.say("1")  # agree
    state = await bot.state(user)
    engine.reached.clear()

    with caplog.at_level(logging.INFO):
        again = await bot.servers.post_raw(body, query)

    assert again.status == 200 and again.body == "success"
    assert await bot.state(user) == state  # not welcomed again
    assert bot.api.texts_to(user.openid) == []
    if not safe_mode:  # refused before the message is read: its nonce was used
        assert engine.reached == []
        [line] = kvisa_lines(caplog)
        assert line.levelno == logging.WARNING and "used before" in line.getMessage()
    # In safe mode the body is signed too: the copy is the message itself, claimed by MsgId.


async def test_plain_mode_a_replayed_signature_cannot_carry_another_body(serve: Serve) -> None:
    """Plain mode signs the query string only: whoever saw one signed URL could post anyone's
    words under it while it is fresh. The nonce was used: nothing is done."""
    bot, engine = await serve()
    alice, mallory = bot.user("alice"), bot.user("mallory")
    body, query = bot.servers.envelope(message_xml(alice.openid, "text", {"Content": "hi"}))
    await bot.servers.post_raw(body, query)
    engine.reached.clear()

    forged = message_xml(mallory.openid, "text", {"Content": "/delete", "MsgId": 74})
    reply = await bot.servers.post_raw(forged.encode(), query)

    assert reply.body == "success"
    assert engine.reached == []


@MODES
async def test_a_replay_reaching_another_process_is_refused_there_too(
    open_storage: StorageFactory, serve_channel: ServeChannel, safe_mode: bool
) -> None:
    flows, catalogs = content()
    one = await serve_channel(open_storage(), safe_mode=safe_mode)
    other_storage = open_storage()
    engine = RecordingEngine(Engine(flows, catalogs, other_storage))
    other = await serve_channel(other_storage, engine, safe_mode=safe_mode)
    user = one.user()
    body, query = one.servers.envelope(
        message_xml(user.openid, "text", {"Content": "/start", "MsgId": 75})
    )
    assert (await one.servers.post_raw(body, query)).fields is not None
    await one.servers.post(message_xml(user.openid, "text", {"Content": "1", "MsgId": 76}))
    state = await one.state(user)

    again = await other.servers.post_raw(body, query)

    assert again.body == "success"
    assert await other.state(user) == state
    assert engine.reached == [] or safe_mode


def always_remembering(services: Services) -> WeChatChannel:
    """A channel that keeps every passive reply for a retry, however quick it was."""
    settings = services.settings
    assert settings.wechat_app_id and settings.wechat_app_secret
    api = WeChatApi(
        services.engine.storage,
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_api_base,
    )
    return WeChatChannel(services, api, remember_after=0.0)


@MODES
async def test_a_wechat_retry_with_a_new_nonce_still_gets_its_reply(
    serve: Serve, safe_mode: bool
) -> None:
    """WeChat's retry is the same message (MsgId) under a new timestamp and nonce: the
    dedup by MsgId answers it (here with the reply it kept), the replay check lets it by."""
    bot, _ = await serve(safe_mode=safe_mode, make=always_remembering)
    user = bot.user()
    first = await user.say("/start")
    state = await bot.state(user)

    again = await user.retry()

    assert again.status == 200 and again.text == first.text
    assert await bot.state(user) == state


BROKEN = (
    "<xml><ToUserName><![CDATA[gh_kvisa_test]]></ToUserName><Content><![CDATA["
    + "my passport number is E12345678 " * 1600  # about 50 KB, never closed
)


@MODES
@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
async def test_50_kb_of_broken_xml_gets_400_and_one_short_line_at_every_level(
    serve: Serve, caplog: pytest.LogCaptureFixture, safe_mode: bool, level: int
) -> None:
    bot, engine = await serve(safe_mode=safe_mode)
    assert 49_000 < len(BROKEN) < 64 * 1024
    if safe_mode:  # broken XML where the envelope should be, signed as WeChat signs
        body, query = BROKEN.encode(), bot.servers.query(encrypted="whatever")
    else:
        body, query = bot.servers.envelope(BROKEN)

    caplog.clear()
    with caplog.at_level(level):  # the root logger: every library's records too
        reply = await bot.servers.post_raw(body, query)

    assert reply.status == 400 and engine.reached == []
    lines = [caplog.handler.format(record) for record in caplog.records]
    assert len(lines) == (1 if level <= logging.WARNING else 0), lines
    log = "\n".join(lines)
    assert len(log) < 200 and "passport" not in log and "E12345678" not in log
