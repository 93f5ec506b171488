"""`kvisa serve`: one HTTP server (webhooks, /healthz) and every channel that is configured."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from kvisa.bot.broadcasts.admin import AdminChat, Notifier, admin_routes
from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.runner import BroadcastRunner
from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.channels.base import Channel, Services
from kvisa.bot.clock import Clock, SystemClock
from kvisa.bot.content import load_content
from kvisa.bot.engine.engine import Engine
from kvisa.bot.holdings import holdings
from kvisa.bot.pacing import pacers as make_pacers
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.retention.rules import Rules
from kvisa.bot.retention.service import RetentionService
from kvisa.bot.settings import Settings
from kvisa.errors import ConfigError, StorageError
from kvisa.storage import open_storage
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)
STORAGE_KEY: web.AppKey[Storage] = web.AppKey("storage", Storage)

# Each channel module offers `from_settings(services) -> Channel | None` (None: not configured).
ChannelFactory = Callable[[Services], Channel | None]


def channel_factories() -> list[ChannelFactory]:
    from kvisa.bot.channels.telegram import from_settings as telegram
    from kvisa.bot.channels.wechat import from_settings as wechat

    return [telegram, wechat]


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[STORAGE_KEY].ping()
    except StorageError:
        return web.json_response({"status": "storage unavailable"}, status=503)
    return web.json_response({"status": "ok"})


def build_app(
    storage: Storage,
    channels: list[Channel],
    extra_routes: Callable[[web.Application], None] | None = None,
) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[STORAGE_KEY] = storage
    app.router.add_get("/healthz", healthz)
    for channel in channels:
        channel.routes(app)
    if extra_routes is not None:
        extra_routes(app)
    return app


class Server:
    """Everything `kvisa serve` runs; tests start and stop it in-process."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.storage: Storage | None = None
        self.channels: list[Channel] = []
        self.runner: web.AppRunner | None = None
        self.reminders: ReminderService | None = None
        self.broadcasts: BroadcastRunner | None = None
        self.composer: Composer | None = None
        self.retention: RetentionService | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # never leave the HTTP site or a connection behind
            raise

    async def _start(self) -> None:
        flows, catalogs = load_content(self.settings)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.settings.storage_url)
        await self.storage.ping()
        pacers = make_pacers(self.settings.rates)
        services = Services(
            self.settings, Engine(flows, catalogs, self.storage), catalogs, self.clock, pacers
        )
        self.channels = [
            c for factory in channel_factories() if (c := factory(services)) is not None
        ]
        if not self.channels:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN", "no channel is configured (set Telegram or WeChat settings)"
            )
        by_name = {c.name: c for c in self.channels}
        engine, bc = services.engine, BroadcastSettings.from_settings(self.settings)
        for holding in holdings(self.storage, self.settings.data_dir):
            engine.erasure.register(holding)
        store = BroadcastStore(self.storage)
        self.broadcasts = BroadcastRunner(
            store,
            catalogs,
            self.clock,
            {c.name: c.send for c in self.channels},
            pacers,
            bc,
            redis_url=self.settings.redis_url,
            redis_prefix=self.storage.namespace,
            on_progress=Notifier(by_name, self.storage, catalogs),
            on_blocked=engine.mark_inactive,
        )
        composer = Composer(flows, catalogs, store, self.clock, on_created=self._broadcast_created)
        self.composer = composer
        engine.interceptor = AdminChat(bc.admins, composer, store, catalogs, bc.agency)

        def admin_api(app: web.Application) -> None:
            if bc.admin_token:
                admin_routes(app, bc.admin_token.get_secret_value(), composer, store)

        self.runner = web.AppRunner(
            build_app(self.storage, self.channels, admin_api), access_log=None
        )
        await self.runner.setup()
        await web.TCPSite(self.runner, self.settings.http_host, self.settings.http_port).start()
        for channel in self.channels:
            await channel.start()
        self.reminders = ReminderService(
            engine,
            self.clock,
            {c.name: c.send for c in self.channels},
            ReminderSettings.from_settings(self.settings),
            redis_url=self.settings.redis_url,
            data_dir=self.settings.data_dir,
            pacers=pacers,
        )
        await self.reminders.start()
        await self.broadcasts.start()
        self.retention = RetentionService(
            engine,
            Rules.from_settings(self.settings),
            self.clock,
            {c.name: c.send for c in self.channels},
            pacers,
            redis_url=self.settings.redis_url,
            prefix=self.storage.namespace,
        )
        await self.retention.start()
        log.info(
            "serving %s on %s:%s",
            ", ".join(c.name for c in self.channels),
            self.settings.http_host,
            self.settings.http_port,
        )

    def _broadcast_created(self, broadcast: Broadcast) -> None:
        if self.broadcasts is not None:
            self.broadcasts.wake()

    async def stop(self) -> None:
        """Stop whatever was started, once; safe after a failed start."""
        reminders, channels, runner, storage = (
            self.reminders,
            self.channels,
            self.runner,
            self.storage,
        )
        broadcasts, retention = self.broadcasts, self.retention
        self.retention = None
        self.reminders, self.channels, self.runner, self.storage, self.broadcasts = (
            None,
            [],
            None,
            None,
            None,
        )
        if retention:
            await retention.stop()
        if broadcasts:
            await broadcasts.stop()  # sends in flight finish; the rest resumes at the next start
        if reminders:
            await reminders.stop()
        for channel in reversed(channels):
            await channel.stop()
        if runner:
            await runner.cleanup()
        if storage:
            await storage.close()


async def serve(settings: Settings) -> int:
    server = Server(settings)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await server.start()
    # aiogram's pydantic models make full garbage collections slow (~200 ms here); freezing what
    # exists after start-up keeps them out of every later collection (p99 spikes otherwise).
    gc.collect()
    gc.freeze()
    try:
        await stopped.wait()
    finally:
        await server.stop()
    return 0
