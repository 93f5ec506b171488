"""Reminder benchmark on a real Redis.

1. Scheduling: N applicants (default 100,000) who reported their entry into China are
   rescheduled through the service's own path (queue -> leader -> the scheduler's Redis job
   store, bot/reminders/jobs.py): seconds, and Redis memory per applicant (INFO memory
   before and after, on a database of its own).
2. Firing: M of them (default 10,000) due at once, delivered through the real Telegram
   channel (aiogram) to the fake Bot API of tests/, which here refuses more than 30 messages a
   second (429 with retry_after, as Telegram does): messages per second achieved, duplicates,
   losses (from the fake's chats and from the ledger), and the latency of interactive turns
   handled by the same process while it fires.

Run: .venv/bin/python bench/reminders.py [--applicants 100000] [--fire 10000]
     [--redis-url redis://127.0.0.1:6379/14]   (the database is used for the run, then cleaned)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from bench.common import percentile
from kvisa.bot.channels.base import Services
from kvisa.bot.clock import FixedClock
from kvisa.bot.content import load_content
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Inbound
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage
from tests.channels.telegram.fake_api import SENDING, TOKEN, ApiError, Call, FakeBotApi

LIMIT = 30.0  # messages a second the fake accepts, as Telegram's broadcast limit
ENTERED = "2026-11-20"  # act by Fri 4 Dec; the 7-day reminder is at 09:00 Shanghai on 27 Nov
DUE = dt.datetime(2026, 11, 27, 1, tzinfo=dt.UTC)
FIRST_CHAT = 8_000_000_000


class LimitedBotApi(FakeBotApi):
    """The fake Bot API with a global flood limit: a token bucket of LIMIT a second (burst
    LIMIT)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tokens, self.stamp, self.refused = LIMIT, 0.0, 0
        self.times: list[float] = []

    def _check_chat(self, call: Call) -> None:
        super()._check_chat(call)
        if call.method not in SENDING:
            return
        now = asyncio.get_running_loop().time()
        self.tokens = min(LIMIT, self.tokens + (now - self.stamp) * LIMIT)
        self.stamp = now
        if self.tokens < 1:
            self.refused += 1
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        self.tokens -= 1
        self.times.append(now)


def state() -> dict[str, Any]:
    return Session(
        consent_at="2026-11-01T00:00:00+00:00",
        finished=True,
        awaiting=Waiting(Kind.MENU),
        answers={
            "park": "other",
            "plan": "employed",
            "planned_application": "2026-11-01",
            "residence_country": "DE",
        },
        events={"entered": ENTERED},
    ).to_json()


async def put_users(storage: RedisStorage, users: list[UserKey]) -> None:
    data = state()
    for start in range(0, len(users), 50):
        await asyncio.gather(
            *(storage.put(u, data, expected_version=0) for u in users[start : start + 50])
        )


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def wait_scheduled(client: redis.Redis, prefix: str, count: int) -> None:
    while (
        client.hlen(f"{prefix}:reminders:pending")
        or client.zcard(f"{prefix}:reminders:run_times") < count
    ):
        await asyncio.sleep(0.2)


async def schedule(url: str, applicants: int, data_dir: Path) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    flows, catalogs = load_content(Settings.from_env({}))
    storage = RedisStorage.from_url(url, prefix=prefix)
    users = [UserKey("telegram", str(FIRST_CHAT + n)) for n in range(applicants)]
    try:
        start = used_memory(client)
        await put_users(storage, users)
        with_sessions = used_memory(client)
        # A day before the reminders: every applicant gets a job set for tomorrow.
        engine = Engine(flows, catalogs, storage)
        service = ReminderService(
            engine,
            FixedClock(DUE - dt.timedelta(days=1)),
            {},
            ReminderSettings(),
            redis_url=url,
            data_dir=data_dir,
        )
        await service.start()
        began = time.perf_counter()
        await service.reschedule_all()
        await wait_scheduled(client, prefix, applicants)
        seconds = time.perf_counter() - began
        await service.stop()
        scheduled = used_memory(client)
        print(
            f"scheduling: {applicants} applicants in {seconds:.1f} s ({applicants / seconds:.0f}/s)"
        )
        print(
            f"  Redis memory per applicant: jobs {(scheduled - with_sessions) / applicants:.0f} B, "
            f"session {(with_sessions - start) / applicants:.0f} B"
        )
    finally:
        await storage.close()
        clean(client, prefix)


async def fire(url: str, count: int, data_dir: Path) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    flows, catalogs = load_content(Settings.from_env({}))
    storage = RedisStorage.from_url(url, prefix=prefix)
    users = [UserKey("telegram", str(FIRST_CHAT + n)) for n in range(count)]
    api = LimitedBotApi()
    await api.start()
    try:
        await put_users(storage, users)
        from kvisa.bot.channels.telegram import from_settings

        clock = FixedClock(DUE)
        engine = Engine(flows, catalogs, storage)
        settings = Settings.from_env(
            {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": api.base_url,
                "KVISA_DATA_DIR": str(data_dir),
            }
        )
        channel = from_settings(Services(settings, engine, catalogs, clock))
        assert channel is not None
        service = ReminderService(
            engine,
            clock,
            {"telegram": channel.send},
            ReminderSettings(rates={"telegram": LIMIT}),
            redis_url=url,
            data_dir=data_dir,
        )
        # Interactive turns in the same process, before and while the reminders go out.
        probe = UserKey("telegram", "7")
        await engine.handle(Inbound(probe, DUE, command="start"))
        await engine.handle(Inbound(probe, DUE, option="agree"))
        baseline = [await turn_latency(engine, probe) for _ in range(20)]
        await service.start()
        began = time.perf_counter()
        await service.reschedule_all()
        during: list[float] = []
        while sum(1 for u in users if api.messages.get(int(u.id))) < count:
            during.append(await turn_latency(engine, probe))
            await asyncio.sleep(0.25)
            if time.perf_counter() - began > count / LIMIT * 3 + 60:
                break
        await service.stop()
        await channel.bot.session.close()
        if "--debug" in sys.argv:
            print(sorted(((round(v * 1000), i) for i, v in enumerate(during)), reverse=True)[:8])
        delivered = {u: len(api.messages.get(int(u.id), [])) for u in users}
        span = api.times[-1] - api.times[0] if len(api.times) > 1 else 1.0
        ledgered = 0
        for u in users:
            record = await storage.get(u)
            ledgered += bool(record and record.data.get("reminders_sent"))
        rate = (len(api.times) - 1) / span
        print(
            f"firing: {count} due at once against {LIMIT:.0f} messages/s: {rate:.1f} messages/s "
            f"({rate / LIMIT:.0%} of the limit), {span:.0f} s"
        )
        print(
            f"  duplicates {sum(n - 1 for n in delivered.values() if n > 1)}, "
            f"losses {sum(1 for n in delivered.values() if n == 0)}, "
            f"ledger entries {ledgered}/{count}, "
            f"429 answers {api.refused}"
        )
        print(
            f"  interactive turn latency: p50 {statistics.median(baseline) * 1000:.1f} ms, "
            f"p99 {percentile(baseline, 0.99) * 1000:.1f} ms idle; "
            f"p50 {statistics.median(during) * 1000:.1f} ms, "
            f"p99 {percentile(during, 0.99) * 1000:.1f} ms while firing ({len(during)} turns)"
        )
    finally:
        await api.stop()
        await storage.close()
        clean(client, prefix)


async def turn_latency(engine: Engine, user: UserKey) -> float:
    began = time.perf_counter()
    await engine.handle(Inbound(user, DUE, command="help"))
    return time.perf_counter() - began


def clean(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--applicants", type=int, default=100_000)
    parser.add_argument("--fire", type=int, default=10_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--debug", action="store_true", help="also print the slowest interactive turns"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        if args.applicants:
            asyncio.run(schedule(args.redis_url, args.applicants, Path(data_dir)))
        if args.fire:
            asyncio.run(fire(args.redis_url, args.fire, Path(data_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
