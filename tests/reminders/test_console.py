"""`kvisa chat --clock ...` with `/clock +3d`: reminders show up without waiting, on the same
plan and ledger as the service."""

from __future__ import annotations

import io
from pathlib import Path

from kvisa.bot.channels.console import ConsoleChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import MORNING, session


async def test_moving_the_clock_shows_each_reminder_that_fell_due(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(UserKey("console", "me"), session(), expected_version=0)
    out = io.StringIO()
    clock = FixedClock(
        MORNING[7].replace(hour=0)
    )  # 08:00 in Shanghai: the 7-day reminder is an hour away
    console = ConsoleChannel(engine, clock, "me", None, tmp_path, out=out)
    await console.handle_line("/clock +5d")
    shown = out.getvalue()
    assert shown.count("🔔") == 2  # the 7- and the 3-day reminders, each at its own 09:00
    assert "in 7 days" in shown and "in 3 days" in shown and "comes late" not in shown
    # Numbered like any option: no prompt was shown, so from 1, each reminder after the last.
    assert "  1. Done\n  2. Remind me tomorrow" in shown
    assert "  3. Done\n  4. Remind me tomorrow" in shown
    await console.handle_line("1")
    assert "Recorded: Work permit application submitted" in out.getvalue()
    await console.handle_line("/clock +5d")
    assert out.getvalue().count("🔔") == 2  # done: nothing more for this deadline
    record = await storage.get(UserKey("console", "me"))
    assert record and len(record.data["reminders_sent"]) == 2


async def test_the_clock_command_needs_a_fixed_clock(engine: Engine, tmp_path: Path) -> None:
    from kvisa.bot.clock import SystemClock

    out = io.StringIO()
    await ConsoleChannel(engine, SystemClock(), "me", None, tmp_path, out=out).handle_line(
        "/clock +1d"
    )
    assert "--clock" in out.getvalue()
