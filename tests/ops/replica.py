"""`kvisa serve` at a fixed time, for the topology test: the same settings, logging and
`serve()` as the command, with the clock the test's reminders are due at (REPLICA_CLOCK)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys

from kvisa.bot import logs
from kvisa.bot.clock import FixedClock
from kvisa.bot.server import serve
from kvisa.bot.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.pseudonym_key)
    clock = FixedClock(dt.datetime.fromisoformat(os.environ["REPLICA_CLOCK"]))
    return asyncio.run(serve(settings, clock))


if __name__ == "__main__":
    sys.exit(main())
