"""Reminder fixtures: users with dated events, a recording channel, services on SQLite or Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Outbound
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.errors import Blocked, RateLimited
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.support import Chat, engine_on

ENTERED = dt.date(2026, 11, 20)  # + 15 days = Sat 5 Dec -> act by Fri 4 Dec
ANSWERS = {
    "park": "other",
    "plan": "employed",
    "planned_application": "2026-11-01",
    "residence_country": "DE",
}
# 09:00 in Shanghai on the days of the work permit reminders (7, 3, 1, 0 days before Fri 4 Dec).
MORNING = {
    offset: dt.datetime(2026, 12, 4, 1, tzinfo=dt.UTC) - dt.timedelta(days=offset)
    for offset in (7, 3, 1, 0)
}
FAST = ReminderSettings(
    lease=2.0,
    retry=1.0,
    leader_ttl=1.0,
    drain_interval=0.05,
    rates={"telegram": 1000.0, "console": 1000.0},
)


def session(
    events: dict[str, dt.date] | None = None, lang: str = "en", **extra: Any
) -> dict[str, Any]:
    """A user who finished the interview and reported `events` (default: entered on 20 Nov)."""
    events = {"entered": ENTERED} if events is None else events
    state = Session(
        lang=lang,
        consent_at="2026-11-01T00:00:00+00:00",
        answers=dict(ANSWERS),  # type: ignore[arg-type]
        awaiting=Waiting(Kind.MENU),
        finished=True,
        events={k: v.isoformat() for k, v in events.items()},
    ).to_json()
    state["answers"].update(extra.pop("answers", {}))
    return state | extra


@dataclass
class Recorder:
    """A channel that keeps what it was asked to send, and can refuse the way platforms do."""

    sent: list[tuple[UserKey, Outbound]] = field(default_factory=list)
    blocked: set[UserKey] = field(default_factory=set)
    slow_down: list[float] = field(
        default_factory=list
    )  # RateLimited(retry_after) for the next calls

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        if user in self.blocked:
            raise Blocked(f"{user} blocked the bot")
        if self.slow_down:
            raise RateLimited(self.slow_down.pop(0))
        self.sent += [(user, message) for message in messages]

    def to(self, user: UserKey) -> list[Outbound]:
        return [message for who, message in self.sent if who == user]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MORNING[7])


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with SqliteStorage(tmp_path / "kvisa.db") as store:
        yield store


@pytest.fixture
async def storage(sqlite_storage: SqliteStorage) -> SqliteStorage:
    return sqlite_storage


@pytest.fixture
def engine(storage: SqliteStorage) -> Engine:
    return engine_on(storage)


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return Chat(engine, user=UserKey("telegram", "77"))


@pytest.fixture
async def redis_storage(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStorage]:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as store:
        yield store


ServiceFactory = Callable[..., Awaitable[ReminderService]]


@pytest.fixture
async def services(
    tmp_path: Path, recorder: Recorder, clock: FixedClock
) -> AsyncIterator[ServiceFactory]:
    """Start reminder services (each stopped afterwards): on `storage`, Redis when `redis_url`."""
    started: list[ReminderService] = []

    async def start(
        storage: Storage,
        redis_url: str | None = None,
        settings: ReminderSettings = FAST,
        engine: Engine | None = None,
    ) -> ReminderService:
        service = ReminderService(
            engine or engine_on(storage),
            clock,
            {"telegram": recorder.send},
            settings,
            redis_url=redis_url,
            data_dir=tmp_path / "var",
        )
        started.append(service)
        await service.start()
        return service

    yield start
    for service in reversed(started):
        async with asyncio.timeout(30):  # a stop that hangs fails here, with its stack
            await service.stop()
