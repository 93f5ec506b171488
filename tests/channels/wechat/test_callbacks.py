"""/wechat as WeChat's servers use it: URL verification, signatures, safe mode, bad requests,
retries."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound, Outbound
from kvisa.identity import UserKey
from kvisa.storage.base import Once
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.callbacks import message_xml, sign
from tests.channels.wechat.conftest import Bot, ServeChannel, StartBot
from tests.support import content


async def test_url_verification_echoes_echostr_when_signed(bot: Bot) -> None:
    query = bot.servers.query() | {"echostr": "7251839028374"}

    async with bot.http.get(f"{bot.base_url}/wechat", params=query) as response:
        assert response.status == 200
        assert await response.text() == "7251839028374"


async def test_url_verification_with_a_wrong_signature_is_refused(bot: Bot) -> None:
    query = bot.servers.query(token="not-our-token") | {"echostr": "7251839028374"}

    async with bot.http.get(f"{bot.base_url}/wechat", params=query) as response:
        assert response.status == 403
        assert "7251839028374" not in await response.text()


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
async def test_a_text_gets_a_passive_reply_in_plain_and_safe_mode(
    start_bot: StartBot, safe_mode: bool
) -> None:
    bot = await start_bot(safe_mode=safe_mode)
    user = bot.user()

    reply = await user.say("/start")

    assert reply.status == 200
    assert reply.fields is not None
    assert reply.fields["ToUserName"] == user.openid
    assert reply.options  # the consent question, as numbered lines
    assert bot.api.calls == []  # one passive reply was enough


async def test_a_forged_signature_is_refused_and_nothing_is_processed(bot: Bot) -> None:
    user = bot.user()
    xml = message_xml(user.openid, "text", {"Content": "/start", "MsgId": 42})

    reply = await bot.servers.post_raw(xml.encode(), bot.servers.query(token="stolen?"))

    assert reply.status == 403
    assert await bot.state(user) is None


async def test_safe_mode_refuses_an_envelope_signed_with_the_wrong_token(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(safe_mode=True)
    user = bot.user()
    body, query = bot.servers.envelope(
        message_xml(user.openid, "text", {"Content": "/start", "MsgId": 43})
    )
    query["msg_signature"] = sign("not-our-token", query["timestamp"], query["nonce"], "whatever")

    reply = await bot.servers.post_raw(body, query)

    assert reply.status == 403
    assert await bot.state(user) is None


async def test_safe_mode_refuses_an_unencrypted_message(start_bot: StartBot) -> None:
    bot = await start_bot(safe_mode=True)
    user = bot.user()
    xml = message_xml(user.openid, "text", {"Content": "/start", "MsgId": 44})

    reply = await bot.servers.post_raw(xml.encode(), bot.servers.query())

    assert reply.status == 403


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><MsgType>text</MsgType>",  # cut short
        b"this is not xml at all",
        b"<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>",  # no sender
        (
            b"<xml><ToUserName>gh_x</ToUserName><FromUserName>o_x</FromUserName>"
            b"<CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>"
        ),  # no usable time
        (
            b"<xml><ToUserName>gh_x</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>"
            b"<MsgType>text</MsgType><Content><b>nested</b></Content><MsgId>1</MsgId></xml>"
        ),
        b"<notxml/>",
        "<xml>\u00e9</xml>".encode("latin-1"),  # not UTF-8
    ],
    ids=["truncated", "text", "no-sender", "bad-time", "nested-content", "other-root", "latin-1"],
)
async def test_malformed_xml_with_a_valid_signature_gets_400(bot: Bot, body: bytes) -> None:
    reply = await bot.servers.post_raw(body, bot.servers.query())

    assert reply.status == 400


async def test_a_malformed_envelope_in_safe_mode_gets_400(start_bot: StartBot) -> None:
    bot = await start_bot(safe_mode=True)
    query = bot.servers.query(encrypted="bm90IGVuY3J5cHRlZA==")

    reply = await bot.servers.post_raw(b"<xml><Encrypt>bm90IGVuY3J5cHRlZA==</Encrypt></xml>", query)

    assert reply.status == 400


async def test_a_body_over_64_kib_gets_413(bot: Bot) -> None:
    user = bot.user()
    xml = message_xml(user.openid, "text", {"Content": "x" * (64 * 1024), "MsgId": 45})

    reply = await bot.servers.post_raw(xml.encode(), bot.servers.query())

    assert reply.status == 413
    assert await bot.state(user) is None


async def test_a_chunked_body_over_64_kib_gets_413_too(bot: Bot) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b"x" * 1024

    async with bot.http.post(
        f"{bot.base_url}/wechat", params=bot.servers.query(), data=chunks()
    ) as response:
        assert response.status == 413


async def test_a_retried_message_is_handled_once(bot: Bot) -> None:
    user = bot.user()
    await user.say("/start")
    await user.say("1")  # "I agree": the first question follows
    after_first = await bot.state(user)

    again = await user.retry()

    # The first answer went out at once, so WeChat has it: the retry only gets "success".
    assert again.status == 200 and again.fields is None
    assert await bot.state(user) == after_first  # the "1" did not also answer the question


async def test_a_retried_event_is_handled_once(bot: Bot) -> None:
    user = bot.user()
    await user.event("subscribe")
    subscribe = user.last_xml
    await user.say("1")  # agree
    state = await bot.state(user)

    again = await user.retry(subscribe)

    assert again.status == 200 and again.fields is None
    assert await bot.state(user) == state  # no second welcome, consent kept


async def test_echoed_text_cannot_break_out_of_the_reply_cdata(bot: Bot) -> None:
    user = bot.user()
    sneaky = "/x]]><msgtype>image</msgtype>"  # an unknown command: the bot names it back

    reply = await user.say(sneaky)

    assert reply.status == 200
    assert reply.fields is not None and reply.fields["MsgType"] == "text"
    assert sneaky in reply.text


class RecordingEngine(Engine):
    """The real engine, noting everything that reaches it."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.flows, engine.catalogs, engine.storage)
        self.reached: list[object] = []

    async def handle(self, inbound: Inbound, *, once: Once | None = None) -> list[Outbound]:
        self.reached.append(inbound)
        return await super().handle(inbound, once=once)

    async def mark_inactive(self, user: UserKey) -> None:
        self.reached.append(user)
        await super().mark_inactive(user)


LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
BOMBS = {
    "billion-laughs": (f'<!DOCTYPE xml [<!ENTITY lol0 "lol">{LAUGHS}]>', "&lol9;"),
    "external-entity": ('<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>', "&e;"),
}


@pytest.mark.parametrize("where", ["envelope", "message", "plain-message"])
@pytest.mark.parametrize(("doctype", "entity"), BOMBS.values(), ids=BOMBS.keys())
async def test_an_entity_bomb_gets_400_and_one_log_line_and_never_reaches_the_engine(
    tmp_path: Path,
    serve_channel: ServeChannel,
    caplog: pytest.LogCaptureFixture,
    where: str,
    doctype: str,
    entity: str,
) -> None:
    storage = SqliteStorage(tmp_path / "kvisa.db")
    flows, catalogs = content()
    engine = RecordingEngine(Engine(flows, catalogs, storage))
    try:
        bot = await serve_channel(storage, engine, safe_mode=where != "plain-message")
        user = bot.user()
        xml = message_xml(user.openid, "text", {"MsgId": 46}).replace(
            "</xml>", f"<Content>{entity}</Content></xml>"
        )
        if where == "envelope":  # WeChat's envelope of a harmless message, with the bomb on top
            body, query = bot.servers.envelope(message_xml(user.openid, "text", {"MsgId": 46}))
            body = doctype.encode() + body.replace(
                b"<ToUserName>", f"<Bomb>{entity}</Bomb><ToUserName>".encode()
            )
        else:  # the bomb inside: encrypted and signed as WeChat would (safe mode), or as is
            body, query = bot.servers.envelope(doctype + xml)

        with caplog.at_level(logging.INFO):
            reply = await bot.servers.post_raw(body, query)

        assert reply.status == 400
        logged = [r for r in caplog.records if r.name.startswith("kvisa")]
        assert [r.levelno for r in logged] == [logging.WARNING]
        assert "lol" not in logged[0].getMessage() and "passwd" not in logged[0].getMessage()
        assert engine.reached == []
        assert await bot.state(user) is None
    finally:
        await storage.close()
