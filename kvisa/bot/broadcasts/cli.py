"""`kvisa broadcast` and `kvisa broadcasts`: queue a broadcast from files, follow its progress.

The command writes to the same storage as `kvisa serve` (REDIS_URL or the SQLite file under
KVISA_DATA_DIR); the serving process that leads picks the broadcast up within a second and
delivers it. Following the progress can be stopped with Ctrl-C without stopping the broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from kvisa.bot.broadcasts import texts
from kvisa.bot.broadcasts.compose import Composer
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.clock import SystemClock
from kvisa.bot.content import load_content
from kvisa.bot.settings import Settings
from kvisa.errors import InputError
from kvisa.storage import open_storage

FOLLOW_INTERVAL = 1.0


def read_text(path: str, lang: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--{lang}", "a readable UTF-8 text file", path) from exc


def progress_line(broadcast: Broadcast) -> str:
    t_done = broadcast.total - broadcast.remaining
    c = broadcast.counts
    left = broadcast.seconds_left
    eta = "--:--" if left is None else f"{int(left) // 60:d}:{int(left) % 60:02d}"
    return (
        f"{broadcast.id} [{texts.bar(t_done, broadcast.total, 30)}] {t_done}/{broadcast.total} "
        f"sent {c.get('sent', 0)} failed {c.get('failed', 0)} blocked {c.get('blocked', 0)} "
        f"undeliverable {c.get('undeliverable', 0)} remaining {broadcast.remaining} eta {eta} "
        f"({broadcast.status})"
    )


async def follow(store: BroadcastStore, broadcast_id: str, out: TextIO) -> int:
    """Print the progress until the broadcast ends (a bar redrawn in place on a terminal)."""
    tty = out.isatty()
    last = ""
    while True:
        broadcast = await store.get(broadcast_id)
        if broadcast is None:
            print(f"kvisa: no broadcast {broadcast_id}", file=sys.stderr)
            return 1
        line = progress_line(broadcast)
        if line != last:
            out.write(("\r" + line + "\x1b[K") if tty else line + "\n")
            out.flush()
            last = line
        if broadcast.status in ("done", "cancelled"):
            if tty:
                out.write("\n")
            return 0
        await asyncio.sleep(FOLLOW_INTERVAL)


async def broadcast_command(args: argparse.Namespace, settings: Settings) -> int:
    flows, catalogs = load_content(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_storage(settings.storage_url) as storage:
        store = BroadcastStore(storage)
        if args.cancel:
            broadcast = await store.cancel(args.cancel)
            if broadcast is None:
                print(f"kvisa: no broadcast {args.cancel}", file=sys.stderr)
                return 1
            print(
                f"{broadcast.id}: cancelling"
                if broadcast.status in ("queued", "running")
                else f"{broadcast.id}: already {broadcast.status}"
            )
            return 0
        if args.status:
            return (
                await follow(store, args.status, sys.stdout)
                if args.follow
                else await show(store, args.status)
            )
        if not args.en or not args.zh:
            print("kvisa: a broadcast needs both --en FILE and --zh FILE", file=sys.stderr)
            return 2
        composer = Composer(flows, catalogs, store, SystemClock())
        try:
            en, zh = composer.check_texts(read_text(args.en, "en"), read_text(args.zh, "zh"))
        except InputError as exc:
            print(f"kvisa: --{exc.field}: {exc.expected}", file=sys.stderr)
            return 1
        segment = Segment.parse(flows, args.segment or "")
        audience = await composer.audience(segment)
        print(f"segment: {str(segment) or 'everyone'}")
        print(texts.audience(catalogs["en"], audience.per_channel, audience.outside_window))
        if args.dry_run:
            print("\n" + texts.message(catalogs, "en", en, zh, settings.agency))
            return 0
        broadcast = await composer.create(en, zh, segment, author="cli")
        print(f"queued broadcast {broadcast.id}")
        print("a running `kvisa serve` delivers it; Ctrl-C stops following, not the broadcast")
        if not args.follow:
            return 0
        try:
            return await follow(store, broadcast.id, sys.stdout)
        except asyncio.CancelledError:  # Ctrl-C: the broadcast goes on
            print(f"\nstopped following; `kvisa broadcast --status {broadcast.id}` shows it again")
            return 0


async def show(store: BroadcastStore, broadcast_id: str) -> int:
    broadcast = await store.get(broadcast_id)
    if broadcast is None:
        print(f"kvisa: no broadcast {broadcast_id}", file=sys.stderr)
        return 1
    print(json.dumps(broadcast.to_json(), ensure_ascii=False, indent=2))
    return 0


async def list_command(args: argparse.Namespace, settings: Settings) -> int:
    async with open_storage(settings.storage_url) as storage:
        recent = await BroadcastStore(storage).recent(args.limit)
    for broadcast in recent:
        print(f"{broadcast.created_at[:16]}  {progress_line(broadcast)}")
    if not recent:
        print("no broadcasts yet")
    return 0


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Register these commands with the `kvisa` parser's `add_parser`."""
    p = add_parser("broadcast", help="send a bilingual policy update to a segment of applicants")
    p.add_argument("--en", metavar="FILE", help="the English text")
    p.add_argument("--zh", metavar="FILE", help="the Chinese text")
    p.add_argument(
        "--segment", default="", help="e.g. 'park=lingang reached=entered' (default: everyone)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show the recipients and the message; send nothing"
    )
    p.add_argument(
        "--no-follow", dest="follow", action="store_false", help="queue it and return at once"
    )
    p.add_argument(
        "--status",
        metavar="ID",
        help="show a broadcast's figures (with --follow by default: until it ends)",
    )
    p.add_argument("--cancel", metavar="ID", help="stop a broadcast")
    p.set_defaults(run=lambda a, s: asyncio.run(broadcast_command(a, s)))
    p = add_parser("broadcasts", help="list recent broadcasts with their figures")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(run=lambda a, s: asyncio.run(list_command(a, s)))
