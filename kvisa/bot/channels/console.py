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
from typing import TextIO

from kvisa.bot.channels.base import Channel
from kvisa.bot.clock import Clock, FixedClock, parse_delta
from kvisa.bot.engine.engine import Engine
from kvisa.bot.i18n import lang_from_hint
from kvisa.bot.messages import Inbound, Outbound
from kvisa.bot.reminders.delivery import Deliverer
from kvisa.bot.reminders.settings import ReminderSettings
from kvisa.identity import UserKey


def render(outbound: Outbound) -> str:
    """An Outbound as terminal text: options as a numbered list. Options that belong to no
    prompt (a reminder's buttons) show the text to type instead, since numbers pick the
    current prompt's options."""
    lines = [outbound.text]
    if outbound.prompt is None and outbound.options:
        lines += [f"  [{option.id}] {option.label}" for option in outbound.options]
    else:
        lines += [
            f"  {number}. {option.label}" for number, option in enumerate(outbound.options, 1)
        ]
    return "\n".join(lines)


async def stdin_lines() -> AsyncIterator[str]:
    """Lines of standard input, read off the event loop."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\r\n")


class ConsoleChannel(Channel):
    """One user at a terminal: a line in is a message, replies and reminders are printed."""

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
    ) -> None:
        self.engine, self.clock = engine, clock
        self.user = UserKey("console", user)
        self.lang_hint = lang_hint
        self.attachments_dir = attachments_dir
        self.out = out
        self.interactive = interactive
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
        inbound = Inbound.from_text(self.user, text, self.clock.now(), self.lang_hint)
        for outbound in await self.engine.handle(inbound):
            self.show(outbound)
        await self.deliver_due()

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

    async def move_clock(self, step: str) -> None:
        """`/clock +3d` (console only): move a fixed clock forward, then deliver what fell due."""
        t = self.engine.catalogs[lang_from_hint(self.lang_hint)]
        if not isinstance(self.clock, FixedClock):
            print(
                t(
                    "/clock works when the chat runs on a fixed time: "
                    "kvisa chat --clock 2026-12-01T09:00"
                ),
                file=self.out,
            )
            print(file=self.out)
            return
        try:
            delta = parse_delta(step or "+1d")
        except ValueError:
            print(
                t("Move the clock forward like this: /clock +3d, /clock +2h or /clock +30m."),
                file=self.out,
            )
            print(file=self.out)
            return
        # Stop at each reminder's own time on the way, as a running service would have sent it.
        end = self.clock.now() + delta
        while self.reminders is not None:
            due = (await self.reminders.outlook(self.user)).next_at
            if due is None or due > end:
                break
            self.clock.advance(max(due - self.clock.now(), dt.timedelta(0)))
            await self.deliver_due()
        self.clock.advance(end - self.clock.now())
        await self.deliver_due()
        now = self.clock.now()
        print(
            t(
                "🕘 The time is now {time} (UTC).",
                time=now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
            ),
            file=self.out,
        )
        print(file=self.out)

    def show(self, outbound: Outbound) -> None:
        print(render(outbound), file=self.out)
        for attachment in outbound.attachments:
            self.attachments_dir.mkdir(parents=True, exist_ok=True)
            path = self.attachments_dir / attachment.filename
            path.write_bytes(attachment.data)
            print(f"  [{attachment.caption or attachment.filename}: {path}]", file=self.out)
        print(file=self.out)

    async def run(self, lines: AsyncIterator[str]) -> None:
        await self.handle_line("/start")
        while True:
            if self.interactive:
                print("> ", end="", file=self.out, flush=True)
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
            await self.handle_line(line)
