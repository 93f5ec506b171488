"""`kvisa export FILE`, `kvisa import FILE [--merge]`, `kvisa migrate --to redis://...`.

They work on the storage `kvisa serve` uses (REDIS_URL, else the SQLite file under
KVISA_DATA_DIR); stop `kvisa serve` while they run. Every problem is one line on standard
error naming the line of the file or the setting at fault; exit status 1 (2 for a bad --to).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kvisa.bot.data.format import Problem
from kvisa.bot.i18n import N_, Catalogs, Text, lang_from_hint
from kvisa.bot.settings import Settings, without_password
from kvisa.errors import StorageError
from kvisa.storage import open_storage

if TYPE_CHECKING:
    from kvisa.bot.data.transfer import Imported

# transfer.py (with the reminder service it reads a name from) is imported by the commands
# that use it, so that every other `kvisa` command starts as fast as before.

EXIT_PROBLEM, EXIT_USAGE = 1, 2
REDIS_SCHEMES = ("redis", "rediss", "unix")


def kvisa_version() -> str:
    try:
        return version("kvisa-bot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def shown_url(url: str) -> str:
    """A storage URL as printed: a password masked, a SQLite URL as its path."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    return without_password(url)


def backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "redis"


def report(t: Text, command: str, problems: list[Problem], more: int = 0) -> None:
    for problem in problems:
        params: dict[str, Any] = dict(problem.params)
        if isinstance(params.get("expected"), str):
            params["expected"] = t(params["expected"])
        text = t(problem.message, **params)
        if problem.line is not None:
            text = t(N_("line {line}: {problem}"), line=problem.line, problem=text)
        print(f"kvisa {command}: {text}", file=sys.stderr)
    if more:
        print(
            f"kvisa {command}: " + t(N_("... and {count} more problems"), count=more),
            file=sys.stderr,
        )


def text_for(args: argparse.Namespace) -> Text:
    return Catalogs()[lang_from_hint(args.lang)]


async def export_command(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.data.transfer import TransferError, export_store

    t = text_for(args)
    url = settings.storage_url
    if url.startswith("sqlite:") and not (settings.data_dir / "kvisa.db").exists():
        report(t, "export", [no_sqlite_store(settings)])
        return EXIT_PROBLEM
    path = Path(args.file)
    try:
        async with open_storage(url) as storage:
            counts = await export_store(
                storage,
                path,
                source=backend(url),
                version=kvisa_version(),
                replace=args.force,
            )
    except TransferError as exc:
        report(t, "export", exc.problems, exc.more)
        return EXIT_PROBLEM
    print(
        t(
            N_(
                "exported {records} records, {values} values, {claims} claims and {versions} "
                "content versions to {file}"
            ),
            records=counts["record"],
            values=counts["value"],
            claims=counts["claim"],
            versions=counts["content"],
            file=str(path),
        )
    )
    return 0


def imported_lines(t: Text, done: Imported) -> list[str]:
    lines = [
        t(
            N_(
                "imported {records} records, {values} values, {claims} claims and {versions} "
                "content versions"
            ),
            records=done.written["record"],
            values=done.written["value"],
            claims=done.written["claim"],
            versions=done.written["content"],
        )
    ]
    if done.identical:
        lines.append(
            t(N_("{count} entries were stored already as in the file"), count=done.identical)
        )
    if done.kept:
        lines.append(
            t(
                N_(
                    "{count} expiring values and claims the store had already were kept as it "
                    "has them"
                ),
                count=done.kept,
            )
        )
    if done.expired:
        lines.append(
            t(
                N_("{count} entries had expired since the export and were left out"),
                count=done.expired,
            )
        )
    lines.append(t(N_("start kvisa serve: its leader plans every user's reminders again")))
    return lines


async def import_command(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.data.transfer import TransferError, import_file

    t = text_for(args)
    path = Path(args.file)
    if not path.is_file():
        report(t, "import", [Problem(None, N_("{file}: no such file"), {"file": str(path)})])
        return EXIT_PROBLEM
    url = settings.storage_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with open_storage(url) as storage:
            done = await import_file(storage, path, merge=args.merge, where=shown_url(url))
    except TransferError as exc:
        report(t, "import", exc.problems, exc.more)
        return EXIT_PROBLEM
    print("\n".join(imported_lines(t, done)))
    return 0


def no_sqlite_store(settings: Settings) -> Problem:
    return Problem(
        None,
        N_("no SQLite store at {path} (KVISA_DATA_DIR)"),
        {"path": str(settings.data_dir / "kvisa.db")},
    )


def redis_target(url: str) -> Problem | None:
    """None when `url` names a Redis server, else what is wrong with it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in REDIS_SCHEMES:
        return Problem(
            None,
            N_("--to: expected a redis://, rediss:// or unix:// URL, got {value}"),
            {"value": repr(shown_url(url))},
        )
    if parts.scheme != "unix" and not parts.hostname:
        return Problem(None, N_("--to: the URL names no host: {value}"), {"value": repr(url)})
    if parts.scheme != "unix" and parts.path.strip("/") and not parts.path[1:].isdigit():
        return Problem(
            None, N_("--to: the database must be a number: {value}"), {"value": repr(url)}
        )
    return None


async def migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.data.transfer import TransferError, migrate
    from kvisa.storage.sqlite import SqliteStorage

    t = text_for(args)
    problem = redis_target(args.to)
    if problem is not None:
        report(t, "migrate", [problem])
        return EXIT_USAGE
    sqlite_path = settings.data_dir / "kvisa.db"
    if not sqlite_path.exists():
        report(t, "migrate", [no_sqlite_store(settings)])
        return EXIT_PROBLEM
    where = shown_url(args.to)
    try:
        async with SqliteStorage(sqlite_path) as source, open_storage(args.to) as target:
            try:
                await target.ping()
            except StorageError as exc:
                raise TransferError(
                    [
                        Problem(
                            None,
                            N_("--to: {store} does not answer ({error})"),
                            {"store": where, "error": str(exc)},
                        )
                    ]
                ) from exc
            moved = await migrate(
                source, target, workdir=settings.data_dir, where=where, version=kvisa_version()
            )
    except TransferError as exc:
        report(t, "migrate", exc.problems, exc.more)
        return EXIT_PROBLEM
    found = moved.found
    print(
        t(
            N_(
                "moved {records} records, {values} values, {claims} claims and {versions} "
                "content versions from {source} to {target}"
            ),
            records=moved.imported.written["record"],
            values=moved.imported.written["value"],
            claims=moved.imported.written["claim"],
            versions=moved.imported.written["content"],
            source=str(sqlite_path),
            target=where,
        )
    )
    print(
        t(
            N_(
                "verified: {target} holds {records} records, {lasting} lasting and {expiring} "
                "expiring values, {claims} claims, {versions} content versions"
            ),
            target=where,
            records=found["record"],
            lasting=found["lasting value"],
            expiring=found["expiring value"],
            claims=found["claim"],
            versions=found["content version"],
        )
    )
    print(
        t(
            N_(
                "set REDIS_URL to it and start kvisa serve: its leader plans every user's "
                "reminders again"
            )
        )
    )
    return 0


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Register export, import and migrate with the `kvisa` parser's `add_parser`."""

    def lang(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--lang", choices=["en", "zh"], default="en", help="language of the messages"
        )

    p = add_parser("export", help="write everything the bot keeps to a JSON Lines file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace FILE when it exists")
    lang(p)
    p.set_defaults(run=lambda a, s: asyncio.run(export_command(a, s)))

    p = add_parser("import", help="load a file written by kvisa export into the storage")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add to a storage that holds data already (refuses conflicting entries)",
    )
    lang(p)
    p.set_defaults(run=lambda a, s: asyncio.run(import_command(a, s)))

    p = add_parser("migrate", help="move the SQLite storage to an empty Redis, then verify")
    p.add_argument("--to", required=True, metavar="REDIS_URL", help="e.g. redis://127.0.0.1:6379/0")
    lang(p)
    p.set_defaults(run=lambda a, s: asyncio.run(migrate_command(a, s)))
