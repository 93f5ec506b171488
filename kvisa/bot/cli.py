"""The `kvisa` command: chat, serve, assess, flows and config check, wechat menu, broadcast(s),
export, import and migrate."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kvisa.bot import logs
from kvisa.bot.clock import Clock, FixedClock, SystemClock
from kvisa.bot.content import content_dir, load_content
from kvisa.bot.i18n import N_, lang_from_hint
from kvisa.bot.settings import Settings
from kvisa.errors import BotError, FlowError, SettingsError

EXIT_USAGE, EXIT_INPUT = 2, 1


def parse_clock(value: str | None) -> Clock:
    if value is None:
        return SystemClock()
    at = dt.datetime.fromisoformat(value)
    return FixedClock(at if at.tzinfo else at.replace(tzinfo=dt.UTC))


async def chat(args: argparse.Namespace, settings: Settings) -> int:
    from kvisa.bot.channels.console import ConsoleChannel, stdin_lines
    from kvisa.bot.engine.engine import Engine
    from kvisa.storage import open_storage

    flows, catalogs = load_content(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_storage(settings.storage_url) as storage:
        engine = Engine(flows, catalogs, storage)
        channel = ConsoleChannel(
            engine,
            parse_clock(args.clock),
            args.user,
            args.lang,
            settings.data_dir / "attachments" / args.user,
            interactive=sys.stdin.isatty(),
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
    flows, _ = load_content(settings)
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
        "--user", default="me", help="conversation id; the same id resumes it (default: me)"
    )
    p.add_argument(
        "--lang", choices=["en", "zh"], help="language (default: English; /lang switches)"
    )
    p.add_argument("--clock", metavar="ISO_TIME", help="run at a fixed time, e.g. 2026-12-01T09:00")
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
    flows_sub.add_parser("check", help="validate flows/ and its translations").set_defaults(
        run=flows_check
    )

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

    add_commands(sub)
    add_data_commands(sub)
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
