"""The terminal channel: numbered options, one user message a line, attachments saved to files.

Reminders come without a scheduler: after each message, whatever has fallen due by the
clock's time is delivered through the same plan and ledger as `kvisa serve`. With
`kvisa chat --clock ...`, `/clock +3d` moves time forward and shows what fell due meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from kvisa.bot.channels.base import Channel
from kvisa.bot.clock import Clock, FixedClock, parse_delta
from kvisa.bot.engine.engine import Engine
from kvisa.bot.i18n import N_, Text, lang_from_hint
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.policy.answers import normalize
from kvisa.bot.policy.reminders import TIME_ZONE, user_zone
from kvisa.bot.policy.zones import SHANGHAI, ZoneChoice
from kvisa.bot.reminders.delivery import Deliverer
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.bot.session import Session
from kvisa.identity import UserKey

# The times a demo clock may show: from the day the K visa came into force (State Council
# Decree No. 814, flows/sources.yaml), before which the bot's content describes nothing, to
# the end of 2099 (date arithmetic near the year 9999 overflows).
CLOCK_FROM = dt.datetime(2025, 10, 1, tzinfo=SHANGHAI)
CLOCK_UNTIL = dt.datetime(2100, 1, 1, tzinfo=SHANGHAI)
UNREADABLE_LINE = N_("Line {number} is not {encoding} text: skipped. Please type it again.")


def render(outbound: Outbound, first: int = 1) -> str:
    """An Outbound as terminal text: options as a numbered list from `first`."""
    lines = [outbound.text]
    lines += [
        f"  {number}. {option.label}" for number, option in enumerate(outbound.options, first)
    ]
    return "\n".join(lines)


async def stdin_lines() -> AsyncIterator[bytes]:
    """Lines of standard input as bytes, read off the event loop: the console decodes each
    itself, so one undecodable line is reported and skipped instead of ending the chat."""
    while True:
        line = await asyncio.to_thread(sys.stdin.buffer.readline)
        if not line:
            return
        yield line


def stored_session(data: dict[str, Any] | None) -> Session | None:
    return Session.from_json(data) if data else None


def zone_of(data: dict[str, Any] | None) -> ZoneInfo:
    """The applicant's clock, as their reminders are planned (Shanghai until it is known)."""
    answers = (data or {}).get("answers", {})
    events = {k: dt.date.fromisoformat(v) for k, v in (data or {}).get("events", {}).items()}
    return user_zone(answers, events, answers.get(TIME_ZONE))


def local_time(t: Text, at: dt.datetime, zone: ZoneInfo) -> str:
    """`at` on the applicant's clock, in their language: "Dec 1, 2026 09:00 (UTC+8 · Shanghai)"."""
    local = at.astimezone(zone)
    label = ZoneChoice(zone.key, (zone.key,)).label(t.locale)
    return f"{t.date(local.date(), 'medium')} {local:%H:%M} ({label})"


class ConsoleChannel(Channel):
    """One user at a terminal: a line in is a message, replies and reminders are printed.

    Options are numbered: a prompt's from 1, and the options that belong to no prompt (a
    reminder's "Done" and "Remind me tomorrow") after the highest number shown, so that a
    number typed always means one thing. Typing such an option's id still works."""

    name = "console"

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        user: str,
        lang_hint: str | None,
        attachments_dir: Path,
        out: TextIO = sys.stdout,
        interactive: bool = False,
        reminders: bool = True,
        err: TextIO = sys.stderr,
        encoding: str = "utf-8",
    ) -> None:
        self.engine, self.clock = engine, clock
        self.user = UserKey("console", user)
        self.lang_hint = lang_hint
        self.attachments_dir = attachments_dir
        self.out, self.err = out, err
        self.interactive = interactive
        self.encoding = encoding
        self.lines_read = 0
        self.prompt_size = 0  # options of the last prompt shown: numbers 1..prompt_size
        self.actions: dict[int, str] = {}  # a number shown beyond them -> option id
        self.reminders = (
            Deliverer(
                engine.flows,
                engine.catalogs,
                engine.storage,
                clock,
                {"console": self.send},
                ReminderSettings(),
            )
            if reminders
            else None
        )

    async def handle_line(self, text: str) -> None:
        """One line typed by the user (`/clock +3d` moves a fixed clock)."""
        if text.strip().lower().startswith("/clock"):
            return await self.move_clock(text.strip()[len("/clock") :].strip())
        now = self.clock.now()
        option = self.action_numbered(text)
        if option is not None:
            inbound = Inbound(self.user, now, option=option, lang_hint=self.lang_hint)
        else:
            inbound = Inbound.from_text(self.user, text, now, self.lang_hint)
        for outbound in await self.engine.handle(inbound):
            self.show(outbound)
        await self.deliver_due()

    def action_numbered(self, text: str) -> str | None:
        """The id of the option without a prompt shown with this number, if it is one."""
        typed = normalize(text)
        if not typed.isdigit() or int(typed) <= self.prompt_size:
            return None
        return self.actions.get(int(typed))

    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        """The console's way of speaking first (a reminder): print, marked with a bell."""
        for outbound in messages:
            print("🔔", end=" ", file=self.out)
            self.show(outbound)

    async def deliver_due(self) -> None:
        if self.reminders is not None:
            await self.reminders.deliver(self.user)

    async def stored(self) -> dict[str, Any] | None:
        record = await self.engine.storage.get(self.user)
        return record.data if record else None

    def text_for(self, data: dict[str, Any] | None) -> Text:
        """The applicant's language: as chosen in the chat, else as --lang says."""
        session = stored_session(data)
        lang = session.lang if session else lang_from_hint(self.lang_hint)
        return self.engine.catalogs[lang]

    def say(self, text: str) -> None:
        print(text, file=self.out)
        print(file=self.out)

    async def move_clock(self, step: str) -> None:
        """`/clock +3d` or `/clock 2026-12-03T09:00` (console only): move a fixed clock forward,
        delivering what falls due on the way; times are on the applicant's clock."""
        data = await self.stored()
        t, zone = self.text_for(data), zone_of(data)
        if not isinstance(self.clock, FixedClock):
            return self.say(
                t(
                    "/clock works when the chat runs on a fixed time: "
                    "kvisa chat --clock 2026-12-01T09:00"
                )
            )
        now = self.clock.now()
        end = until(step or "+1d", now, zone)
        if end is None:
            return self.say(
                t(
                    "Move the clock forward like this: /clock +3d, /clock +2h, /clock +30m, "
                    "or to a time: /clock 2026-12-03T09:00."
                )
            )
        if not now <= end < CLOCK_UNTIL:
            return self.say(
                t(
                    "The clock moves forward only, and no further than the end of 2099: "
                    "it is {time} now.",
                    time=local_time(t, now, zone),
                )
            )
        # Stop at each reminder's own time on the way, as a running service would have sent it.
        while self.reminders is not None:
            due = (await self.reminders.outlook(self.user)).next_at
            if due is None or due > end:
                break
            self.clock.advance(max(due - self.clock.now(), dt.timedelta(0)))
            await self.deliver_due()
        self.clock.advance(end - self.clock.now())
        await self.deliver_due()
        data = await self.stored()  # a reminder's answer may have moved the applicant's clock
        t, zone = self.text_for(data), zone_of(data)
        self.say(t("🕘 The time is now {time}.", time=local_time(t, self.clock.now(), zone)))

    def show(self, outbound: Outbound) -> None:
        first = 1
        if outbound.options and outbound.prompt is None:
            first = max([self.prompt_size, *self.actions]) + 1
            for number, option in enumerate(outbound.options, first):
                self.actions[number] = option.id
        elif outbound.options:
            self.prompt_size = len(outbound.options)
            self.actions = {n: i for n, i in self.actions.items() if n > self.prompt_size}
        print(render(outbound, first), file=self.out)
        for attachment in outbound.attachments:
            self.attachments_dir.mkdir(parents=True, exist_ok=True)
            path = self.attachments_dir / attachment.filename
            path.write_bytes(attachment.data)
            print(f"  [{attachment.caption or attachment.filename}: {path}]", file=self.out)
        print(file=self.out)

    def decode(self, line: bytes | str) -> str | None:
        """A line of input as text; None (and one message on stderr) when it is not text in
        the terminal's encoding."""
        self.lines_read += 1
        if isinstance(line, bytes):
            try:
                line = line.decode(self.encoding)
            except UnicodeDecodeError:
                t = self.engine.catalogs[lang_from_hint(self.lang_hint)]
                message = t(UNREADABLE_LINE, number=self.lines_read, encoding=self.encoding)
                print(f"kvisa chat: {message}", file=self.err, flush=True)
                return None
        if self.lines_read == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write first
        return line.rstrip("\r\n")

    async def run(self, lines: AsyncIterator[bytes | str]) -> None:
        await self.handle_line("/start")
        while True:
            if self.interactive:
                print("> ", end="", file=self.out, flush=True)
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
            text = self.decode(line)
            if text is not None:
                await self.handle_line(text)


def until(step: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """Where `/clock STEP` moves the clock: `+3d`, `+2h`, `+30m` from `now`, or a time (on the
    applicant's clock unless it names its offset); None when STEP is neither."""
    try:
        return now + parse_delta(step)
    except OverflowError:
        return CLOCK_UNTIL  # past any time the clock may show
    except ValueError:
        pass
    try:
        at = dt.datetime.fromisoformat(step)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=zone)
