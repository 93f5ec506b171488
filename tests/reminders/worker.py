"""A reminder process for the tests: `python -m tests.reminders.worker` runs the reminder
service alone (no chat channel) on Redis, at a fixed time, and sends every reminder as an
HTTP POST to a sink on loopback. It runs until SIGTERM (a clean stop) or SIGKILL.

Environment: KVISA_TEST_REDIS_URL, WORKER_PREFIX (storage key prefix), WORKER_SINK (URL),
WORKER_CLOCK (ISO time), and the KVISA_REMINDER_* settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from kvisa.bot.clock import FixedClock
from kvisa.bot.content import load_content
from kvisa.bot.engine.engine import Engine
from kvisa.bot.messages import Outbound
from kvisa.bot.reminders.service import ReminderService
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.settings import Settings
from kvisa.errors import ChannelError
from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage


class SinkChannel:
    """Delivers by POSTing the user and the message's option ids to the sink."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        for message in messages:
            body = {
                "user": str(user),
                "options": [o.id for o in message.options],
                "pid": os.getpid(),
            }
            try:
                async with self.session.post(self.url, json=body) as response:
                    if response.status != 200:
                        raise ChannelError(f"sink answered {response.status}")
            except aiohttp.ClientError as exc:
                raise ChannelError(str(exc)) from exc


async def main() -> int:
    redis_url = os.environ["KVISA_TEST_REDIS_URL"]
    flows, catalogs = load_content(Settings.from_env({}))
    storage = RedisStorage.from_url(redis_url, prefix=os.environ["WORKER_PREFIX"])
    engine = Engine(flows, catalogs, storage)
    clock = FixedClock(dt.datetime.fromisoformat(os.environ["WORKER_CLOCK"]))
    sink = SinkChannel(os.environ["WORKER_SINK"])
    with tempfile.TemporaryDirectory() as data_dir:
        service = ReminderService(
            engine,
            clock,
            {"telegram": sink.send},
            ReminderSettings.from_settings(Settings.from_env()),
            redis_url=redis_url,
            data_dir=Path(data_dir),
        )
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await service.start()
        print("ready", flush=True)
        await stopped.wait()
        await service.stop()
        if sink.session:
            await sink.session.close()
        await storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
