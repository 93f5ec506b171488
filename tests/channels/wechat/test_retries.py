"""WeChat's retries while the first delivery of a message is still being handled, in the same
process and in another one: the message is applied once and answered once."""

from __future__ import annotations

import asyncio
import itertools

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat import WeChatChannel
from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from tests.channels.wechat.callbacks import message_xml
from tests.channels.wechat.conftest import Bot, GatedEngine, ServeChannel, StorageFactory
from tests.support import content

MSG_IDS = itertools.count(6_500_000_000_000_000_001)
CUSTOM = "/cgi-bin/message/custom/send"


def never_remembering(services: Services) -> WeChatChannel:
    """A channel that never keeps a passive reply for a retry, so a retry answered from the
    claim alone says "success" whatever the speed of the machine."""
    settings = services.settings
    assert settings.wechat_app_id and settings.wechat_app_secret
    api = WeChatApi(
        services.engine.storage,
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_api_base,
    )
    return WeChatChannel(services, api, remember_after=3600.0)


async def consented_question(bot: Bot, engine: GatedEngine | None = None) -> tuple[str, str]:
    """A user who has just been shown the consent question; their "1" (I agree), not sent yet."""
    user = bot.user()
    if engine is not None:
        engine.gate.set()
    await user.say("/start")
    if engine is not None:
        engine.gate.clear()
    return user.openid, message_xml(user.openid, "text", {"Content": "1", "MsgId": next(MSG_IDS)})


async def agreed_once(bot: Bot, openid: str) -> bool:
    """Consent given and the first question asked; a second "1" would have answered it."""
    record = await bot.storage.get(UserKey("wechat", openid))
    state = record.data if record else {}
    return (
        state.get("consent_at") is not None
        and state.get("answers") == {}
        and (state.get("awaiting") or {}).get("kind") == "question"
    )


async def test_a_retry_while_the_first_is_still_handled_is_handled_once(
    open_storage: StorageFactory, serve_channel: ServeChannel
) -> None:
    flows, catalogs = content()
    storage = open_storage()
    engine = GatedEngine(Engine(flows, catalogs, storage))
    bot = await serve_channel(storage, engine, make=never_remembering)
    openid, agree = await consented_question(bot, engine)

    first = asyncio.create_task(bot.servers.post(agree))
    await engine.until_waiting(1)
    again = asyncio.create_task(bot.servers.post(agree))  # WeChat gave up waiting and retried
    await engine.until_waiting(2)
    engine.gate.set()
    replies = await asyncio.gather(first, again)

    assert [r.status for r in replies] == [200, 200]
    assert sorted(r.fields is None for r in replies) == [False, True]  # one answer, one "success"
    assert await agreed_once(bot, openid)
    assert bot.api.texts_to(openid) == []  # nor was it answered again by a customer-service message


async def test_a_retry_reaching_another_process_is_handled_once(
    open_storage: StorageFactory, serve_channel: ServeChannel
) -> None:
    flows, catalogs = content()
    slow_storage, other_storage = open_storage(), open_storage()
    slow_engine = GatedEngine(Engine(flows, catalogs, slow_storage))
    slow = await serve_channel(slow_storage, slow_engine, make=never_remembering)
    other = await serve_channel(other_storage, make=never_remembering)
    openid, agree = await consented_question(other)

    first = asyncio.create_task(slow.servers.post(agree))
    await slow_engine.until_waiting(1)
    again = await other.servers.post(agree)  # the retry went to the other process, which is quick
    slow_engine.gate.set()
    replies = [await first, again]

    assert [r.status for r in replies] == [200, 200]
    assert sorted(r.fields is None for r in replies) == [False, True]
    assert await agreed_once(other, openid)
    assert slow.api.texts_to(openid) == []
