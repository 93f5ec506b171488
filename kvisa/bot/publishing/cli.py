"""`kvisa content publish|list|diff|rollback`: content versions in the storage `kvisa serve`
uses (REDIS_URL, else the SQLite file under KVISA_DATA_DIR). Running replicas switch to a
newly published version within a second, between turns; the change job (job.py) re-checks
every applicant and queues the notices, which a running `kvisa serve` delivers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Callable
from typing import Any

from kvisa.bot.content import content_dir
from kvisa.bot.i18n import SEPARATOR, Catalogs
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.publishing.job import run_pending
from kvisa.bot.publishing.recheck import Summary
from kvisa.bot.publishing.service import Publisher, parse_id
from kvisa.bot.settings import Settings
from kvisa.storage import open_storage
from kvisa.storage.base import ContentVersion


def when(version: ContentVersion) -> str:
    at = dt.datetime.fromtimestamp(version.published_at, dt.UTC)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def version_line(version: ContentVersion, current: int | None) -> str:
    note = version.note
    if version.rollback_of is not None:
        note = f"rollback to {version.rollback_of}" + (f": {note}" if note else "")
    mark = "  (current)" if version.id == current else ""
    return f"{version.id}\t{when(version)}\t{version.author}\t{version.sha256[:12]}\t{note}{mark}"


def summary_lines(summary: Summary) -> list[str]:
    lines = [
        f"{summary.checked} applicants re-checked; {summary.affected} affected "
        "(each would get one notice)"
    ]
    for kind, label in (
        ("verdict", "verdict changes"),
        ("checklist", "checklist changes"),
        ("dates", "deadline or estimate changes"),
    ):
        sample = summary.samples[kind]
        example = f"  e.g. {', '.join(sample)}" if sample else ""
        lines.append(f"  {label}: {getattr(summary, kind)}{example}")
    return lines


def both(lines: dict[str, list[str]]) -> str:
    return "\n".join(lines["en"]) + SEPARATOR + "\n".join(lines["zh"])


def today_of(args: argparse.Namespace) -> dt.date:
    return dt.date.fromisoformat(args.today) if args.today else dt.datetime.now(SHANGHAI).date()


async def publish(args: argparse.Namespace, settings: Settings, rollback: int | None) -> int:
    today = today_of(args)
    async with open_storage(settings.storage_url) as storage:
        publisher = Publisher(storage, Catalogs(), content_dir(settings))
        plan = await publisher.plan(rollback)
        if plan.unchanged:
            print(f"nothing to publish: the content is version {plan.current} already")
            return 0
        if args.dry_run:
            summary = await publisher.dry_run(plan, today)
            print(both(publisher.report(plan.old, plan.new)))
            print("\n".join(summary_lines(summary)))
            print("dry run: nothing was published or sent")
            return 0
        version = await publisher.publish(plan, args.author, args.note or "")
        print(both(publisher.report(plan.old, plan.new)))
        print(f"published version {version.id} ({version.sha256[:12]})")
        now = dt.datetime.now(dt.UTC)
        if args.today:  # tests: the day applicants are re-checked on
            now = dt.datetime.combine(today, dt.time(12), SHANGHAI)
        broadcast = await run_pending(storage, publisher.catalogs, now)
        if broadcast is not None:
            print(
                f"{broadcast.total} applicants affected: their notices are queued as broadcast "
                f"{broadcast.id}; a running `kvisa serve` delivers them"
            )
    return 0


async def list_versions(args: argparse.Namespace, settings: Settings) -> int:
    async with open_storage(settings.storage_url) as storage:
        versions = await storage.content_versions()
        current = await storage.current_content_id()
    if not versions:
        print("no content version is published yet (kvisa content publish)", file=sys.stderr)
    for version in versions:
        print(version_line(version, current))
    return 0


async def show_diff(args: argparse.Namespace, settings: Settings) -> int:
    async with open_storage(settings.storage_url) as storage:
        publisher = Publisher(storage, Catalogs(), content_dir(settings))
        old, new = await publisher.side(args.a, "A"), await publisher.side(args.b, "B")
    print(both(publisher.report(old, new)))
    return 0


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    p = add_parser("content", help="content versions: publish, list, diff, rollback")
    sub = p.add_subparsers(dest="content_command", required=True)

    def runner(coro: Callable[[argparse.Namespace, Settings], Any]) -> Callable[..., int]:
        return lambda a, s: int(asyncio.run(coro(a, s)))

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--author", default=getpass.getuser(), help="who publishes (default: you)")
    common.add_argument("--today", metavar="YYYY-MM-DD", help=argparse.SUPPRESS)
    common.add_argument(
        "--dry-run",
        action="store_true",
        help="re-check every applicant and show what would change; publish and send nothing",
    )
    pub = sub.add_parser(
        "publish", parents=[common], help="store the flows directory in effect as a new version"
    )
    pub.add_argument("--note", help="what changed and why, for the version list")
    pub.set_defaults(run=runner(lambda a, s: publish(a, s, None)))

    sub.add_parser("list", help="every version, one a line, its id first").set_defaults(
        run=runner(list_versions)
    )

    d = sub.add_parser("diff", help="what changed from version A to version B, in both languages")
    d.add_argument("a", metavar="A", help="a version id, `current`, or `draft` (the flows dir)")
    d.add_argument("b", metavar="B", help="a version id, `current`, or `draft` (the flows dir)")
    d.set_defaults(run=runner(show_diff))

    r = sub.add_parser(
        "rollback", parents=[common], help="publish the content of version ID again as current"
    )
    r.add_argument("id", metavar="ID", help="the version to restore")
    r.add_argument("--note", help="why, for the version list")
    r.set_defaults(run=runner(lambda a, s: publish(a, s, parse_id(a.id, "ID"))))
