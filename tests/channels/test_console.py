"""The console as `make demo` shows it: greeted once, a reminder's buttons pressed by number,
times on the applicant's clock, broken input reported and skipped."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from kvisa.bot.channels.console import ConsoleChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.engine.engine import Engine
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import MORNING, session
from tests.support import engine_on

ME = UserKey("console", "me")


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with SqliteStorage(tmp_path / "kvisa.db") as store:
        yield store


@pytest.fixture
def engine(storage: SqliteStorage) -> Engine:
    return engine_on(storage)


class Terminal:
    """A console on a fixed clock, its output and error streams."""

    def __init__(self, engine: Engine, tmp_path: Path, at: dt.datetime = MORNING[7]) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.clock = FixedClock(at)
        self.console = ConsoleChannel(
            engine, self.clock, "me", None, tmp_path, out=self.out, err=self.err
        )
        self.seen = 0

    async def type(self, line: str) -> str:
        """What the console printed in answer to `line`."""
        await self.console.handle_line(line)
        return self.new()

    def new(self) -> str:
        shown = self.out.getvalue()[self.seen :]
        self.seen = len(self.out.getvalue())
        return shown


async def lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def test_start_typed_after_the_greeting_does_not_greet_again(
    engine: Engine, tmp_path: Path
) -> None:
    terminal = Terminal(engine, tmp_path)
    await terminal.console.run(lines([b"/start\n"]))  # `make demo` sends one /start itself
    shown = terminal.new()
    assert shown.count("Hello!") == 1
    assert shown.count("Do you agree?") == 2  # asked again, alone
    assert "1. I agree" in shown.rsplit("Hello!", 1)[1]


async def test_a_reminders_buttons_are_numbered_after_the_prompts_options(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(ME, session(), expected_version=0)
    terminal = Terminal(engine, tmp_path, MORNING[7].replace(hour=0))
    menu = await terminal.type("/start")
    assert "  5. Park perks" in menu and "  6." not in menu

    shown = await terminal.type("/clock +5d")

    assert shown.count("🔔") == 2
    assert "  6. Done\n  7. Remind me tomorrow" in shown  # the 7-day reminder
    assert "  8. Done\n  9. Remind me tomorrow" in shown  # the 3-day one
    assert "rem:" not in shown
    later = await terminal.type("9")
    assert "I will remind you again tomorrow" in later
    record = await storage.get(ME)
    assert record and record.data["snoozed"] == {"work_permit_apply": "2026-12-03"}
    assert "Which answer do you want to change?" in await terminal.type("3")  # the menu still


async def test_a_reminders_id_typed_still_works(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(ME, session(), expected_version=0)
    terminal = Terminal(engine, tmp_path)
    assert "Recorded:" in await terminal.type("rem:done:work_permit_apply")


def stored(**changes: Any) -> dict[str, Any]:
    """A finished interview by someone living in Germany who has not entered China yet."""
    return session(events={}) | changes


async def test_clock_shows_the_time_on_the_applicants_clock(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(ME, stored(), expected_version=0)
    terminal = Terminal(engine, tmp_path, dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC))

    shown = await terminal.type("/clock +1h")

    assert "Dec 1, 2026 10:00 (UTC+1 · Berlin)" in shown  # 09:00 UTC
    assert "(UTC)" not in shown


async def test_clock_speaks_the_applicants_language_and_dates(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(ME, stored(lang="zh"), expected_version=0)
    terminal = Terminal(engine, tmp_path, dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC))

    shown = await terminal.type("/clock +1d")

    assert "2026年12月2日 09:00" in shown and "柏林" in shown


async def test_clock_moves_to_a_time_on_the_applicants_clock(
    storage: SqliteStorage, engine: Engine, tmp_path: Path
) -> None:
    await storage.put(ME, stored(), expected_version=0)
    terminal = Terminal(engine, tmp_path, dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC))

    await terminal.type("/clock 2026-12-03T09:00")

    assert terminal.clock.now() == dt.datetime(2026, 12, 3, 8, tzinfo=dt.UTC)


@pytest.mark.parametrize("step", ["2026-11-30T09:00", "+1000000000d", "2150-01-01", "soon"])
async def test_clock_never_moves_back_nor_past_2099(
    storage: SqliteStorage, engine: Engine, tmp_path: Path, step: str
) -> None:
    await storage.put(ME, stored(), expected_version=0)
    at = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    terminal = Terminal(engine, tmp_path, at)

    shown = await terminal.type(f"/clock {step}")

    assert terminal.clock.now() == at
    assert "/clock" in shown or "forward only" in shown


async def test_an_undecodable_line_is_reported_once_and_skipped(
    engine: Engine, tmp_path: Path
) -> None:
    terminal = Terminal(engine, tmp_path)

    await terminal.console.run(lines([b"1\n", b"caf\xe9 \xff\n", b"3\n"]))

    assert terminal.err.getvalue().count("\n") == 1
    assert "Line 2" in terminal.err.getvalue() and "utf-8" in terminal.err.getvalue()
    assert "(2/12)" in terminal.out.getvalue()  # "1" agreed, "3" answered the first question


async def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(
    engine: Engine, tmp_path: Path
) -> None:
    terminal = Terminal(engine, tmp_path)
    await terminal.console.run(lines(["\ufeff/lang zh\n".encode()]))
    assert "I don't know the command" not in terminal.out.getvalue()


async def test_escape_sequences_typed_are_not_printed_back(engine: Engine, tmp_path: Path) -> None:
    terminal = Terminal(engine, tmp_path)
    shown = await terminal.type("/\x1b]0;pwned\x07bogus\x1b[2J")
    assert "/bogus" in shown
    assert "\x1b" not in shown and "\x07" not in shown and "pwned" not in shown
