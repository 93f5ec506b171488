"""`kvisa serve` at a fixed time, for the topology test: the same settings, logging and
`serve()` as the command, with the clock the test's reminders are due at (REPLICA_CLOCK)."""

from __future__ import annotations

import asyncio
import datetime as dt
import faulthandler
import os
import signal
import sys

from kvisa.bot import logs
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import serve
from kvisa.bot.settings import Settings


def dump_tasks() -> None:
    """SIGUSR1: every task's stack to stderr (the replica's log), for a test that waited on
    this process too long to say what it was doing."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def run(settings: Settings, clock: FixedClock) -> int:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    return await serve(settings, clock)


def main() -> int:
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.pseudonym_key)
    clock = FixedClock(dt.datetime.fromisoformat(os.environ["REPLICA_CLOCK"]))
    faulthandler.register(signal.SIGUSR2)  # every thread's stack, when asked
    return asyncio.run(run(settings, clock))


if __name__ == "__main__":
    sys.exit(main())
