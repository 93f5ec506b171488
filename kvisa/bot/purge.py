"""`kvisa purge [--dry-run]`: the retention pass, once, from the command line.

It erases what is due (applicants told at least KVISA_RETENTION_NOTICE_DAYS ago and silent
since; records of people who never consented, older than a day) with everything else kept
about them (bot/holdings.py). It sends no notice: it has no channel, so those due a notice are
counted and left to `kvisa serve`, whose leader runs the same pass daily and tells them.
`--dry-run` only counts. Messages are one line each, in English or Chinese (`--lang`).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from kvisa.bot.clock import SystemClock
from kvisa.bot.content import load_content
from kvisa.bot.engine.engine import Engine
from kvisa.bot.holdings import holdings
from kvisa.bot.i18n import N_, Text, lang_from_hint
from kvisa.bot.retention.purge import Purge, Tally
from kvisa.bot.retention.rules import Due, Rules
from kvisa.bot.settings import Settings
from kvisa.storage import open_storage

EXIT_INCOMPLETE = 1


def summary(t: Text, tally: Tally, rules: Rules, *, dry_run: bool) -> list[str]:
    counts, days = tally.counts, rules.notice.days
    if dry_run:
        return [
            t(
                N_("{count} applicants silent for {months} months would be told"),
                count=counts[Due.TELL],
                months=rules.months,
            ),
            t(
                N_("{count} applicants told {days} days ago or more would be erased"),
                count=counts[Due.ERASE],
                days=days,
            ),
            t(
                N_("{count} records of people who never consented would be erased"),
                count=counts[Due.UNCONSENTED],
            ),
            t(
                N_("{count} applicants told are within the {days} days"),
                count=counts[Due.WAIT],
                days=days,
            ),
        ]
    lines = [
        t(
            N_("erased {count} applicants told {days} days ago or more"),
            count=tally.erased - min(tally.erased, counts[Due.UNCONSENTED]),
            days=days,
        ),
        t(
            N_("erased {count} records of people who never consented"),
            count=min(tally.erased, counts[Due.UNCONSENTED]),
        ),
        t(
            N_("{count} applicants silent for {months} months are to be told by kvisa serve"),
            count=counts[Due.TELL],
            months=rules.months,
        ),
    ]
    if tally.failed:
        lines.append(
            t(
                N_("{count} could not be erased completely; run kvisa purge again"),
                count=tally.failed,
            )
        )
    return lines


async def purge_command(args: argparse.Namespace, settings: Settings) -> int:
    flows, catalogs = load_content(settings)
    t = catalogs[lang_from_hint(args.lang)]
    rules = Rules.from_settings(settings)
    async with open_storage(settings.storage_url) as storage:
        engine = Engine(flows, catalogs, storage)
        for holding in holdings(storage, settings.data_dir):
            engine.erasure.register(holding)
        tally = await Purge(engine, rules, SystemClock(), tell=False).run(dry_run=args.dry_run)
    for line in summary(t, tally, rules, dry_run=args.dry_run):
        print(f"kvisa purge: {line}")
    return EXIT_INCOMPLETE if tally.failed else 0


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Register purge with the `kvisa` parser's `add_parser`."""
    p = add_parser(
        "purge", help="erase applicants silent past KVISA_RETENTION_MONTHS (after their notice)"
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be done")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the messages")
    p.set_defaults(run=lambda a, s: asyncio.run(purge_command(a, s)))
