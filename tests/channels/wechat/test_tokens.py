"""The access token, shared by several bot processes through the storage: fetched once, and
refreshed once when WeChat refuses it, whichever process notices first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kvisa.bot.channels.wechat.api import WeChatApi
from kvisa.bot.messages import Outbound
from kvisa.errors import ChannelError
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.conftest import ServeChannel
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi

Processes = Callable[[], WeChatApi]  # another "process": its own storage connection and client


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def processes(
    request: pytest.FixtureRequest, tmp_path: Path, fake_api: FakeWeChatApi
) -> AsyncIterator[Processes]:
    made: list[tuple[Storage, WeChatApi]] = []

    def storage() -> Storage:
        if request.param == "sqlite":
            return SqliteStorage(tmp_path / "shared.db")
        url: str = request.getfixturevalue("redis_url")
        return RedisStorage.from_url(url, prefix=request.getfixturevalue("redis_prefix"))

    def process() -> WeChatApi:
        shared = storage()
        api = WeChatApi(shared, APP_ID, APP_SECRET, fake_api.base_url)
        made.append((shared, api))
        return api

    yield process
    for shared, api in made:
        api.close()
        await shared.close()


async def test_two_processes_sending_at_once_fetch_one_token(
    processes: Processes, fake_api: FakeWeChatApi
) -> None:
    first, second = processes(), processes()

    await asyncio.gather(
        *(api.send_text(f"o_user_{n}", f"hello {n}") for n, api in enumerate([first, second] * 10))
    )

    assert fake_api.token_requests == 1
    assert len(fake_api.sent("/cgi-bin/message/custom/send")) == 20


async def test_a_token_wechat_refuses_is_refreshed_once_for_every_process(
    processes: Processes, fake_api: FakeWeChatApi
) -> None:
    first, second = processes(), processes()
    await first.send_text("o_user_0", "warm up")
    fake_api.retire_token()

    await asyncio.gather(
        *(api.send_text(f"o_user_{n}", "after expiry") for n, api in enumerate([first, second] * 5))
    )

    assert fake_api.token_requests == 2  # the first fetch and one refresh, not one per process
    assert len(fake_api.sent("/cgi-bin/message/custom/send")) == 11


async def test_a_process_started_later_reuses_the_stored_token(
    processes: Processes, fake_api: FakeWeChatApi
) -> None:
    await processes().send_text("o_user_0", "first")

    await processes().send_text("o_user_1", "second")

    assert fake_api.token_requests == 1


async def test_wrong_credentials_raise_channel_error(
    tmp_path: Path, fake_api: FakeWeChatApi
) -> None:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        api = WeChatApi(storage, APP_ID, "not-the-secret", fake_api.base_url)
        try:
            with pytest.raises(ChannelError):
                await api.send_text("o_user_0", "hello")
        finally:
            api.close()


async def test_an_unreachable_api_raises_channel_error(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        api = WeChatApi(storage, APP_ID, APP_SECRET, "http://127.0.0.1:9")
        try:
            with pytest.raises(ChannelError):
                await api.send_text("o_user_0", "hello")
        finally:
            api.close()


async def test_a_network_error_names_no_access_token(
    processes: Processes, fake_api: FakeWeChatApi
) -> None:
    api = processes()
    await api.send_text("o_user_0", "fetches the token")
    await fake_api.stop()  # WeChat unreachable from now on

    with pytest.raises(ChannelError) as error:
        await api.send_text("o_user_0", "hello")

    assert fake_api.valid_token is not None
    assert fake_api.valid_token not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


@pytest.mark.redis
async def test_two_bot_processes_on_one_redis_share_one_token(
    redis_url: str, redis_prefix: str, serve_channel: ServeChannel, fake_api: FakeWeChatApi
) -> None:
    async with (
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as first_storage,
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as second_storage,
    ):
        first, second = await serve_channel(first_storage), await serve_channel(second_storage)
        user = first.user()
        await user.say("/start")
        await user.say("1")  # agreed, so both processes may push to this user
        key = UserKey("wechat", user.openid)

        await asyncio.gather(
            *(
                bot.channel.send(key, [Outbound(f"reminder {n}")])
                for n, bot in enumerate([first, second] * 3)
            )
        )

        assert fake_api.token_requests == 1
        assert len(fake_api.texts_to(user.openid)) == 6
