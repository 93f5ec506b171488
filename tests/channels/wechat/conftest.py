"""The WeChat channel under test: the real `kvisa serve` server in-process, on loopback,
talking to our fake WeChat API; callbacks posted the way WeChat's servers post them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kvisa.bot.channels.base import Services
from kvisa.bot.channels.wechat import WeChatChannel, from_settings
from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.server import Server, build_app
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.base import Once, Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.channels.wechat.callbacks import AES_KEY, TOKEN, WeChatServers, WeChatUser
from tests.channels.wechat.fake_api import APP_ID, APP_SECRET, FakeWeChatApi
from tests.support import NOON_SHANGHAI, content, free_port

TEMPLATE_ID = "tmpl-kvisa-reminder"


def wechat_settings(
    data_dir: Path, api_base: str, port: int, safe_mode: bool, **env: str
) -> Settings:
    values = {
        "KVISA_DATA_DIR": str(data_dir),
        "KVISA_HTTP_PORT": str(port),
        "KVISA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WECHAT_TOKEN": TOKEN,
        "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET,
        "WECHAT_API_BASE": api_base,
        "WECHAT_TEMPLATE_REMINDER": TEMPLATE_ID,
    }
    if safe_mode:
        values["WECHAT_ENCODING_AES_KEY"] = AES_KEY
    return Settings.from_env(values | env)


class GatedEngine(Engine):
    """The real engine, holding every message until the test opens the gate."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.flows, engine.catalogs, engine.storage)
        self.gate = asyncio.Event()
        self.waiting = 0
        self._arrived = asyncio.Condition()

    async def handle(self, inbound: Inbound, *, once: Once | None = None) -> list[Outbound]:
        async with self._arrived:
            self.waiting += 1
            self._arrived.notify_all()
        await self.gate.wait()
        self.waiting -= 1
        return await super().handle(inbound, once=once)

    async def until_waiting(self, count: int) -> None:
        """Until `count` messages are held at the gate."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.waiting >= count)


@dataclass
class Bot:
    """A running bot with its WeChat channel, the fake API it calls, and WeChat's side."""

    channel: WeChatChannel
    storage: Storage
    api: FakeWeChatApi
    servers: WeChatServers
    clock: FixedClock
    base_url: str
    http: aiohttp.ClientSession

    def user(self, name: str = "alice") -> WeChatUser:
        return WeChatUser(self.servers, f"o_{name}_{uuid.uuid4().hex[:12]}")

    async def state(self, user: WeChatUser) -> dict[str, Any] | None:
        record = await self.storage.get(UserKey("wechat", user.openid))
        return record.data if record else None


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeWeChatApi]:
    api = FakeWeChatApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


StartBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(
    tmp_path: Path, fake_api: FakeWeChatApi, http: aiohttp.ClientSession
) -> AsyncIterator[StartBot]:
    """Starts `kvisa serve`'s Server (WeChat only, SQLite under tmp_path); stops it afterwards."""
    servers: list[Server] = []

    async def start(safe_mode: bool = False, **env: str) -> Bot:
        port = free_port()
        settings = wechat_settings(
            tmp_path / f"var-{len(servers)}", fake_api.base_url, port, safe_mode, **env
        )
        clock = FixedClock(NOON_SHANGHAI)
        server = Server(settings, clock)
        servers.append(server)
        await server.start()
        channel = next(c for c in server.channels if isinstance(c, WeChatChannel))
        assert server.storage is not None
        base_url = f"http://127.0.0.1:{port}"
        callbacks = WeChatServers(http, f"{base_url}/wechat", APP_ID, safe_mode, clock)
        return Bot(channel, server.storage, fake_api, callbacks, clock, base_url, http)

    yield start
    for server in reversed(servers):
        await server.stop()


@pytest.fixture
async def bot(start_bot: StartBot) -> Bot:
    """The bot in plain mode."""
    return await start_bot()


ChannelFactory = Callable[[Services], WeChatChannel]
ServeChannel = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def serve_channel(
    tmp_path: Path, fake_api: FakeWeChatApi, http: aiohttp.ClientSession
) -> AsyncIterator[ServeChannel]:
    """Assembles what Server assembles, but with the engine and storage a test hands in
    (a slow engine, a shared Redis), for what Server cannot be told from outside."""
    started: list[tuple[WeChatChannel, web.AppRunner]] = []

    async def serve(
        storage: Storage,
        engine: Engine | None = None,
        make: ChannelFactory | None = None,
        safe_mode: bool = False,
    ) -> Bot:
        flows, catalogs = content()
        port = free_port()
        settings = wechat_settings(tmp_path, fake_api.base_url, port, safe_mode)
        clock = FixedClock(NOON_SHANGHAI)
        services = Services(settings, engine or Engine(flows, catalogs, storage), catalogs, clock)
        channel = make(services) if make else from_settings(services)
        assert channel is not None
        runner = web.AppRunner(build_app(storage, [channel]), access_log=None)
        await runner.setup()
        started.append((channel, runner))
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await channel.start()
        base_url = f"http://127.0.0.1:{port}"
        callbacks = WeChatServers(http, f"{base_url}/wechat", APP_ID, safe_mode, clock)
        return Bot(channel, storage, fake_api, callbacks, clock, base_url, http)

    yield serve
    for channel, runner in reversed(started):
        await channel.stop()
        await runner.cleanup()


StorageFactory = Callable[[], Storage]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def open_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StorageFactory]:
    """Storages on one backend, as separate processes would open them."""
    opened: list[Storage] = []

    def make() -> Storage:
        if request.param == "sqlite":
            storage: Storage = SqliteStorage(tmp_path / "kvisa.db")
        else:
            storage = RedisStorage.from_url(
                request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix")
            )
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        await storage.close()
