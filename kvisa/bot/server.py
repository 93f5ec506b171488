"""`kvisa serve`: one HTTP server (webhooks, /healthz, /readyz, /metrics) and every channel
that is configured; on SIGTERM, a drain (see Server.stop)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client.core import Metric

from kvisa.bot import applicants, observability
from kvisa.bot.broadcasts.admin import AdminChat, Notifier, admin_routes
from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.runner import BroadcastRunner
from kvisa.bot.broadcasts.settings import BroadcastSettings
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.channels.base import Channel, Services
from kvisa.bot.clock import Clock, SystemClock
from kvisa.bot.content import content_dir, load_content
from kvisa.bot.content.versions import ContentSource
from kvisa.bot.engine.engine import Engine
from kvisa.bot.holdings import holdings
from kvisa.bot.i18n import Catalogs
from kvisa.bot.observability import gauge
from kvisa.bot.pacing import pacers as make_pacers
from kvisa.bot.publishing.admin import content_routes
from kvisa.bot.publishing.calendar_watch import CalendarWatch
from kvisa.bot.publishing.job import ChangeJobs
from kvisa.bot.publishing.service import Publisher
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.retention.rules import Rules
from kvisa.bot.retention.service import RetentionService
from kvisa.bot.settings import Settings
from kvisa.bot.workspace import Workspace, open_workspace
from kvisa.bot.workspace.pages_content import install as install_content_pages
from kvisa.errors import ConfigError, StorageError
from kvisa.storage import open_storage
from kvisa.storage.base import Storage

log = logging.getLogger(__name__)
STORAGE_KEY: web.AppKey[Storage] = web.AppKey("storage", Storage)
READY_TIMEOUT = 2.0  # seconds /readyz waits for the storage's answer
CLOSE_TIMEOUT = 5.0  # seconds the HTTP server waits for handlers still running at the end
IDLE_LOOK = 0.05  # seconds between looks at what is still in flight while draining

# Each channel module offers `from_settings(services) -> Channel | None` (None: not configured).
ChannelFactory = Callable[[Services], Channel | None]


def channel_factories() -> list[ChannelFactory]:
    from kvisa.bot.channels.telegram import from_settings as telegram
    from kvisa.bot.channels.wechat import from_settings as wechat

    return [telegram, wechat]


def build_app(
    storage: Storage,
    channels: list[Channel],
    extra_routes: Callable[[web.Application], None] | None = None,
    status: observability.Status | None = None,
    metrics_token: str | None = None,
) -> web.Application:
    app = web.Application(client_max_size=256 * 1024, middlewares=[observability.request_ids])
    app[STORAGE_KEY] = storage
    if status is not None:
        observability.add_routes(app, status, metrics_token)
    else:
        app.router.add_get("/healthz", observability.healthz)
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
        self.change_jobs: ChangeJobs | None = None
        self.calendar_watch: CalendarWatch | None = None
        self.catalogs: Catalogs | None = None
        self.workspace: Workspace | None = None
        self.started = False  # content loaded, channels registered, schedulers begun
        self.draining = False
        self.requests_in_flight = 0  # HTTP requests being handled (the middleware counts)
        self._pending_broadcasts: dict[str, int] = {}  # id -> recipients left, while running
        self._reminder_backlog = 0

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # never leave the HTTP site or a connection behind
            raise

    async def _start(self) -> None:
        flows, catalogs = load_content(self.settings)
        self.catalogs = catalogs
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.settings.storage_url)
        await self.storage.ping()
        await applicants.migrate(self.storage)  # records of the release before linking
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
        # The current published content version when there is one, else the flows directory.
        engine.content = ContentSource(self.storage, flows)
        engine.flows = await engine.content.current()
        # The FAQ's search index, built at load here rather than on the first typed question
        # (the command-line tools that load content never need it, nor its libraries).
        await asyncio.to_thread(lambda: engine.flows.faq_index)
        engine.links.configure(self.settings.pseudonym_key, self.settings.link_attempts_per_hour)
        engine.links.notify = lambda user, messages: by_name[user.channel].send(user, messages)
        for holding in holdings(self.storage, self.settings.data_dir):
            engine.erasure.register(holding)
        store = BroadcastStore(self.storage)
        notifier = Notifier(by_name, self.storage, catalogs)

        async def progress(broadcast: Broadcast) -> None:
            self._broadcast_progress(broadcast)
            await notifier(broadcast)

        self.broadcasts = BroadcastRunner(
            store,
            catalogs,
            self.clock,
            {c.name: c.send for c in self.channels},
            pacers,
            bc,
            redis_url=self.settings.redis_url,
            redis_prefix=self.storage.namespace,
            on_progress=progress,
            on_blocked=engine.mark_inactive,
        )
        composer = Composer(flows, catalogs, store, self.clock, on_created=self._broadcast_created)
        self.composer = composer
        engine.interceptor = AdminChat(bc.admins, composer, store, catalogs, bc.agency)

        senders = {c.name: c.send for c in self.channels}
        workspace = await open_workspace(
            self.settings, engine, self.clock, senders, composer, store
        )
        self.workspace = workspace
        install_content_pages(workspace, self.publisher)

        def admin_api(app: web.Application) -> None:
            if bc.admin_token:
                admin_routes(app, bc.admin_token.get_secret_value(), composer, store)
                content_routes(app, self.publisher, self.clock)
            workspace.mount(app)  # /agency/

        token = self.settings.admin_token
        app = build_app(
            self.storage,
            self.channels,
            admin_api,
            status=self,
            metrics_token=token.get_secret_value() if token else None,
        )
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT)
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
        self.reminders.deliverer.content = engine.content
        await self.reminders.start()
        await self.broadcasts.start()
        # A publish's re-check left undone by the publishing command (bot/publishing/job.py).
        self.change_jobs = ChangeJobs(
            self.storage, catalogs, self.clock.now, on_queued=self._broadcast_created
        )
        await self.change_jobs.start()
        # From 1 November: next year's holiday schedule, if missing (publishing/calendar_watch).
        self.calendar_watch = CalendarWatch(
            self.storage,
            engine.content,
            self.clock,
            catalogs,
            bc.admins,
            {c.name: c.send for c in self.channels},
        )
        self.calendar_watch.start()
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
        await workspace.start()
        self.started = True
        log.info(
            "serving %s on %s:%s",
            ", ".join(c.name for c in self.channels),
            self.settings.http_host,
            self.settings.http_port,
        )

    def publisher(self) -> Publisher:
        """Publishing content versions (the admin API, the workspace) on this storage."""
        assert self.storage is not None and self.catalogs is not None
        return Publisher(self.storage, self.catalogs, content_dir(self.settings))

    def _broadcast_created(self, broadcast: Broadcast) -> None:
        if self.broadcasts is not None:
            self.broadcasts.wake()

    def _broadcast_progress(self, broadcast: Broadcast) -> None:
        if broadcast.status == "running":
            self._pending_broadcasts[broadcast.id] = broadcast.counts.get("pending", 0)
        else:
            self._pending_broadcasts.pop(broadcast.id, None)

    # --- what /readyz and /metrics read -------------------------------------------------------

    async def readiness(self) -> list[str]:
        if self.draining:
            return ["draining: shutting down"]
        if not self.started:
            return ["starting: content, channels or schedulers not ready yet"]
        assert self.storage is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self.storage.ping()
        except (StorageError, TimeoutError) as exc:
            return [f"storage unavailable: {exc or 'no answer in time'}"]
        return []

    async def refresh(self) -> None:
        if self.reminders is not None and not self.draining:
            try:
                async with asyncio.timeout(READY_TIMEOUT):
                    self._reminder_backlog = await self.reminders.coordinator.backlog()
            except Exception:  # noqa: BLE001 - a scrape shows the last figure rather than fail
                log.debug("could not read the reminder backlog", exc_info=True)

    def gauges(self) -> Iterator[Metric]:
        reminders, broadcasts = self.reminders, self.broadcasts
        yield gauge(
            "kvisa_scheduler_leader",
            "1 while this process runs the scheduler (reminders) or the delivery (broadcasts)",
            "scheduler",
            {
                "reminders": float(bool(reminders and reminders.leader)),
                "broadcasts": float(bool(broadcasts and broadcasts.leader)),
            },
        )
        depths = {f"{c.name}_in_flight": float(c.in_flight()) for c in self.channels}
        depths["reminder_deliveries"] = float(reminders.in_flight() if reminders else 0)
        depths["reminder_reschedules"] = float(self._reminder_backlog)
        depths["broadcast_recipients"] = float(sum(self._pending_broadcasts.values()))
        yield gauge(
            "kvisa_queue_depth",
            "Work waiting or under way: updates and deliveries per channel, reminder "
            "deliveries, users waiting to be rescheduled, broadcast recipients left",
            "queue",
            depths,
        )
        missing = self.calendar_watch.missing if self.calendar_watch else None
        yield gauge(
            "kvisa_calendar_schedule_missing",
            "1 from 1 November while next year's official holiday schedule is not in the "
            "content (flows/calendar.yaml); dates in that year are estimates",
            "year",
            {"next": 1.0 if missing else 0.0},
        )
        yield gauge(
            "kvisa_ready",
            "1 while /readyz would say ready (0 while starting or draining)",
            "process",
            {"serve": float(self.started and not self.draining)},
        )

    # --- stopping -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain, then stop whatever was started, once; safe after a failed start.

        1. Not ready (/readyz 503) and no new updates: the webhooks answer 503, so Telegram
           and WeChat send them again (to another replica), and polling stops asking.
        2. Turns and requests in flight finish (their replies sent) within
           KVISA_SHUTDOWN_GRACE of the start of the drain; broadcast sends under way finish
           and are recorded meanwhile.
        3. Reminder deliveries under way finish and are recorded; the leadership is handed
           back at once (another replica takes over without waiting for the lock's ttl).
        4. Whatever a channel still holds when the grace is over is cancelled; the HTTP
           server and the storage (Redis) are closed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        self.draining = True
        reminders, channels, runner, storage = (
            self.reminders,
            self.channels,
            self.runner,
            self.storage,
        )
        broadcasts, retention, workspace = self.broadcasts, self.retention, self.workspace
        self.retention, self.workspace = None, None
        self.reminders, self.channels, self.runner, self.storage, self.broadcasts = (
            None,
            [],
            None,
            None,
            None,
        )
        if retention:
            await retention.stop()
        change_jobs, self.change_jobs = self.change_jobs, None
        if change_jobs:
            await change_jobs.stop()
        calendar_watch, self.calendar_watch = self.calendar_watch, None
        if calendar_watch:
            await calendar_watch.stop()
        for channel in channels:
            await channel.drain()
        # Turns in flight finish while the reminder service still listens to them (a turn that
        # moved a date asks for a reschedule); broadcasts stop meanwhile.
        await asyncio.gather(
            *([broadcasts.stop()] if broadcasts else []),
            self._until_idle(channels, deadline),
        )
        if reminders:
            await reminders.stop()  # deliveries under way finish; leadership handed back
        for channel in reversed(channels):
            await channel.stop(max(0.0, deadline - loop.time()))
        if runner:
            await runner.cleanup()
        if workspace:
            await workspace.stop()
        if storage:
            await storage.close()
        if channels:
            log.info("stopped")

    async def _until_idle(self, channels: list[Channel], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < deadline and (
            self.requests_in_flight or any(channel.in_flight() for channel in channels)
        ):
            await asyncio.sleep(IDLE_LOOK)


START_PATIENCE = 60.0  # seconds a replica waits at start-up for a storage that does not answer


async def serve(settings: Settings, clock: Clock | None = None) -> int:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    server = await _started(settings, clock, stopped)
    if server is None:
        return 0
    # aiogram's pydantic models make full garbage collections slow (~200 ms here); freezing what
    # exists after start-up keeps them out of every later collection (p99 spikes otherwise).
    gc.collect()
    gc.freeze()
    try:
        await stopped.wait()
        log.info("draining: SIGTERM or SIGINT received")
    finally:
        await server.stop()
    return 0


async def _started(
    settings: Settings, clock: Clock | None, stopped: asyncio.Event
) -> Server | None:
    """A started server; while the storage does not answer (Redis restarting, as replicas and
    Redis come up together), tried again for START_PATIENCE seconds before giving up with
    the storage's error. None: stopped (SIGTERM) while waiting."""
    loop = asyncio.get_running_loop()
    give_up, pause = loop.time() + START_PATIENCE, 0.5
    while True:
        server = Server(settings, clock)
        try:
            await server.start()
            return server
        except StorageError as exc:
            if loop.time() + pause > give_up:
                raise
            log.warning(
                "the storage does not answer at start-up (%s); trying again in %.1f s", exc, pause
            )
        try:
            await asyncio.wait_for(stopped.wait(), pause)
            return None
        except TimeoutError:
            pause = min(pause * 2, 5.0)
