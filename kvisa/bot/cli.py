"""The `kvisa` command: chat, serve, assess, flows and config check, wechat menu, broadcast(s),
export, import, migrate and purge."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from kvisa.bot import logs
from kvisa.bot.clock import Clock, FixedClock, SystemClock
from kvisa.bot.content import content_dir, load_content
from kvisa.bot.i18n import N_, Text, lang_from_hint
from kvisa.bot.policy.zones import SHANGHAI
from kvisa.bot.settings import Settings
from kvisa.errors import BotError, FlowError, SettingsError

EXIT_USAGE, EXIT_INPUT = 2, 1


# A conversation id names a directory under KVISA_DATA_DIR/attachments: no separator, no
# leading dot (so neither `..` nor a hidden file), nothing a file system may refuse.
CONSOLE_USER = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def parse_clock(value: str | None, zone: ZoneInfo = SHANGHAI) -> Clock | None:
    """The clock `--clock` asks for (a time without an offset is on `zone`); None when the
    value is not a time."""
    if value is None:
        return SystemClock()
    try:
        at = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return FixedClock(at if at.tzinfo else at.replace(tzinfo=zone))


def clock_problem(
    t: Text, args: argparse.Namespace, zone: ZoneInfo, last_seen: str | None
) -> str | None:
    """Why `--clock` cannot be the chat's clock: not a time, before the K visa existed or past
    2099, or before the stored conversation's last message (a demo clock never runs back over
    what the conversation has recorded)."""
    from kvisa.bot.channels.console import CLOCK_FROM, CLOCK_UNTIL, local_time

    clock = parse_clock(args.clock, zone)
    if clock is None:
        message = N_("kvisa chat: --clock: expected a time like 2026-12-01T09:00, got {value!r}")
        return t(message, value=args.clock[:60])
    now = clock.now()
    if not CLOCK_FROM <= now < CLOCK_UNTIL:
        message = N_(
            "kvisa chat: --clock: {value} is outside the times the bot knows, "
            "from 2025-10-01 (when the K visa came into force) to 2099-12-31"
        )
        return t(message, value=args.clock)
    if last_seen is not None and now < (last := dt.datetime.fromisoformat(last_seen)):
        message = N_(
            "kvisa chat: --clock: {value} is before the last message of the conversation "
            "{user!r} ({time}); choose a later time, or another --user"
        )
        return t(message, value=args.clock, user=args.user, time=local_time(t, last, zone))
    return None


async def chat(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.applicants import migrate
    from kvisa.bot.channels.console import ConsoleChannel, stdin_lines, stored_session, zone_of
    from kvisa.bot.engine.engine import Engine
    from kvisa.bot.holdings import attachments_dir, holdings
    from kvisa.identity import UserKey
    from kvisa.storage import open_storage

    flows, catalogs = load_content(settings)
    t = catalogs[lang_from_hint(args.lang)]
    if not CONSOLE_USER.fullmatch(args.user):
        message = N_(
            "kvisa chat: --user: use 1 to 64 letters, digits, '_', '-' or '.', "
            "not starting with '.' (got {value!r})"
        )
        print(t(message, value=args.user[:60]), file=sys.stderr)
        return EXIT_USAGE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_storage(settings.storage_url) as storage:
        await migrate(storage)  # records of the release before linking
        record = await storage.get(UserKey("console", args.user))
        data = record.data if record else None
        session, zone = stored_session(data), zone_of(data)
        if args.clock is not None:
            problem = clock_problem(t, args, zone, session.last_seen if session else None)
            if problem is not None:
                print(problem, file=sys.stderr)
                return EXIT_USAGE
        clock = parse_clock(args.clock, zone)  # a time without an offset is the applicant's
        assert clock is not None
        engine = Engine(flows, catalogs, storage)
        for holding in holdings(storage, settings.data_dir):
            engine.erasure.register(holding)
        channel = ConsoleChannel(
            engine,
            clock,
            args.user,
            args.lang,
            attachments_dir(settings.data_dir, UserKey("console", args.user)),
            interactive=sys.stdin.isatty(),
            encoding=sys.stdin.encoding or "utf-8",
        )
        await channel.run(stdin_lines())
    return 0


async def serve_command(settings: Settings) -> int:
    from kvisa.bot.server import serve

    return await serve(settings)


def assess(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.assess import batch
    from kvisa.bot.assess.reading import Kind

    flows, catalogs = load_content(settings)
    t = catalogs[lang_from_hint(args.lang)]
    today = batch.parse_today(args.today) if args.today else SystemClock().now().date()
    if today is None:
        message = N_("kvisa assess: --today: expected a date as YYYY-MM-DD, got {value!r}")
        print(t(message, value=args.today), file=sys.stderr)
        return EXIT_USAGE
    kind: Kind = "csv" if args.csv else "xlsx" if args.xlsx else "json"
    name = args.csv or args.xlsx or args.profile
    output = Path(args.output) if args.output else None
    return batch.assess_file(flows, t, kind, Path(name), today, output, sys.stdout, sys.stderr)


def flows_check(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.assess.batch import parse_today
    from kvisa.bot.content.freshness import stale_facts, stale_warning

    today = parse_today(args.today) if args.today else SystemClock().now().date()
    if today is None:
        print(
            f"kvisa flows check: --today: expected YYYY-MM-DD, got {args.today!r}", file=sys.stderr
        )
        return EXIT_USAGE
    flows, _ = load_content(settings)
    for fact in stale_facts(flows, today, settings.content_max_age_days):
        print(stale_warning(fact, today, settings.content_max_age_days), file=sys.stderr)
    print(
        f"flows OK ({content_dir(settings)}): {len(flows.questions)} questions, "
        f"{len(flows.items)} checklist items, {len(flows.faq)} FAQ entries, "
        f"{len(flows.parks)} parks, {len(flows.messages)} texts all translated"
    )
    return 0


def config_check(args: argparse.Namespace, settings: Settings) -> int:
    # Reached only with valid settings: main() has already named every bad one and exited 2.
    for variable, value, is_set in settings.effective():
        note = "" if is_set else ("  # unset" if value is None else "  # default")
        print(f"{variable}={value or ''}{note}")
    print("settings OK")
    return 0


def wechat_menu(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.channels.wechat.menu import install_menu
    from kvisa.bot.i18n import Catalogs

    menu = asyncio.run(install_menu(settings, Catalogs()))
    print("WeChat menu installed: " + " | ".join(button["name"] for button in menu["button"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvisa", description="KVisa bot: K-type visa assistant")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chat", help="talk to the bot in the terminal")
    p.add_argument(
        "--user",
        default="me",
        help="conversation id (letters, digits, '_', '-', '.'); the same id resumes it "
        "(default: me)",
    )
    p.add_argument(
        "--lang", choices=["en", "zh"], help="language (default: English; /lang switches)"
    )
    p.add_argument(
        "--clock",
        metavar="ISO_TIME",
        help="run at a fixed time, e.g. 2026-12-01T09:00 (on your clock unless an offset is "
        "given; not before the conversation's last message)",
    )
    p.set_defaults(run=lambda a, s: asyncio.run(chat(a, s)))

    p = sub.add_parser("serve", help="run the channels (Telegram, WeChat) and the HTTP server")
    p.set_defaults(run=lambda a, s: asyncio.run(serve_command(s)))

    p = sub.add_parser(
        "assess", help="assess candidate profiles (JSON file, --csv FILE or --xlsx FILE)"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("profile", nargs="?", help="a JSON file with one profile object")
    src.add_argument(
        "--csv",
        metavar="FILE",
        help="a CSV file (UTF-8 or GB18030), one candidate a row, columns = answer ids or aliases",
    )
    src.add_argument(
        "--xlsx", metavar="FILE", help="an Excel workbook: its first sheet, as with --csv"
    )
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the results to FILE: a workbook if it ends in .xlsx, else JSON lines "
        "(default: JSON on standard output)",
    )
    p.add_argument(
        "--lang", choices=["en", "zh"], default="en", help="language of titles and texts"
    )
    p.add_argument("--today", metavar="YYYY-MM-DD", help="assess as of this date (default: today)")
    p.set_defaults(run=assess)

    p = sub.add_parser("flows", help="content tools")
    flows_sub = p.add_subparsers(dest="flows_command", required=True)
    check = flows_sub.add_parser(
        "check", help="validate flows/, its sources and translations; warn about old as_of dates"
    )
    check.add_argument(
        "--today", metavar="YYYY-MM-DD", help="judge as_of ages as of this date (default: today)"
    )
    check.set_defaults(run=flows_check)

    p = sub.add_parser("config", help="settings tools")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser(
        "check", help="print the effective settings (secrets masked); exit 2 naming bad ones"
    ).set_defaults(run=config_check)

    p = sub.add_parser("wechat", help="WeChat Official Account tools")
    wechat_sub = p.add_subparsers(dest="wechat_command", required=True)
    wechat_sub.add_parser(
        "menu", help="install the account's menu (checklist, timeline, help)"
    ).set_defaults(run=wechat_menu)

    from kvisa.bot.broadcasts.cli import add_commands
    from kvisa.bot.data.cli import add_commands as add_data_commands
    from kvisa.bot.publishing.cli import add_commands as add_content_commands
    from kvisa.bot.purge import add_commands as add_purge_command
    from kvisa.bot.workspace.cli import add_commands as add_staff_commands

    add_commands(sub.add_parser)
    add_data_commands(sub.add_parser)
    add_purge_command(sub.add_parser)
    add_staff_commands(sub.add_parser)
    add_content_commands(sub.add_parser)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run a command; the settings come from `env`, else the environment and ./.env."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(env, env_file=Path.cwd() / ".env")
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"kvisa: {problem}", file=sys.stderr)
        return EXIT_USAGE
    # JSON lines for every command but the console chat, whose reader is a person.
    logs.configure(settings.log_level, settings.pseudonym_key, json=args.command != "chat")
    try:
        return int(args.run(args, settings))
    except FlowError as exc:
        print(f"kvisa: invalid content: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (BotError, OSError) as exc:
        print(f"kvisa: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
