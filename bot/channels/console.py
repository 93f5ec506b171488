"""The terminal channel: numbered options, one user message a line, attachments saved to files."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from bot.clock import Clock
from bot.engine.engine import Engine
from bot.engine.types import Inbound, Outbound
from storage.base import UserKey


def render(outbound: Outbound) -> str:
    """An Outbound as terminal text: options as a numbered list."""
    lines = [outbound.text]
    lines += [f"  {number}. {option.label}" for number, option in enumerate(outbound.options, 1)]
    return "\n".join(lines)


async def stdin_lines() -> AsyncIterator[str]:
    """Lines of standard input, read off the event loop."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\r\n")


class ConsoleChannel:
    def __init__(self, engine: Engine, clock: Clock, user: str, lang_hint: str | None,
                 attachments_dir: Path, out: TextIO = sys.stdout, interactive: bool = False) -> None:
        self.engine, self.clock = engine, clock
        self.user = UserKey("console", user)
        self.lang_hint = lang_hint
        self.attachments_dir = attachments_dir
        self.out = out
        self.interactive = interactive

    async def send(self, text: str) -> None:
        inbound = Inbound.from_text(self.user, text, self.clock.now(), self.lang_hint)
        for outbound in await self.engine.handle(inbound):
            self.show(outbound)

    def show(self, outbound: Outbound) -> None:
        print(render(outbound), file=self.out)
        for attachment in outbound.attachments:
            self.attachments_dir.mkdir(parents=True, exist_ok=True)
            path = self.attachments_dir / attachment.filename
            path.write_bytes(attachment.data)
            print(f"  [{attachment.caption or attachment.filename}: {path}]", file=self.out)
        print(file=self.out)

    async def run(self, lines: AsyncIterator[str]) -> None:
        await self.send("/start")
        while True:
            if self.interactive:
                print("> ", end="", file=self.out, flush=True)
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return
            await self.send(line)
