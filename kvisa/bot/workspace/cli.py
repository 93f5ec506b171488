"""`kvisa staff add NAME --role admin|agent|viewer`, `kvisa staff list`, `kvisa staff disable
NAME` (and `enable NAME`), `kvisa staff reset NAME`: the workspace's accounts, against the
storage `kvisa serve` uses. A password is asked twice at a prompt, or read as two lines from
standard input when it is not a terminal. Operator messages, in English like `kvisa config`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from kvisa.bot.settings import Settings
from kvisa.bot.workspace.accounts import ROLES, StaffStore, password_problem
from kvisa.errors import InputError
from kvisa.storage import open_storage

EXIT_INPUT, EXIT_USAGE = 1, 2


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    p = add_parser("staff", help="accounts of the agency's workspace (/agency/)")
    sub = p.add_subparsers(dest="staff_command", required=True)
    add = sub.add_parser("add", help="create an account (the password is asked twice)")
    add.add_argument("name", help="2-32 lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(run=lambda a, s: asyncio.run(staff_add(a, s)))
    sub.add_parser("list", help="every account, its role and state").set_defaults(
        run=lambda a, s: asyncio.run(staff_list(a, s))
    )
    for name, doc in (
        ("disable", "stop an account signing in (its sessions end)"),
        ("enable", "let a disabled account sign in again"),
        ("reset", "set a new password (asked twice; the account's sessions end)"),
    ):
        command = sub.add_parser(name, help=doc)
        command.add_argument("name")
        command.set_defaults(run=lambda a, s, n=name: asyncio.run(staff_change(n, a, s)))


def read_password(stdin: TextIO = sys.stdin) -> str | None:
    """Twice at a prompt, or two lines of standard input; None when they differ or lack."""
    if stdin.isatty():
        first = getpass.getpass("Password (12 characters or more): ")
        second = getpass.getpass("Password again: ")
    else:
        first, second = stdin.readline().rstrip("\r\n"), stdin.readline().rstrip("\r\n")
    return first if first == second and first else None


def password_or_problem() -> tuple[str | None, str | None]:
    password = read_password()
    if password is None:
        return None, "kvisa staff: the two passwords differ (or one is missing)"
    problem = password_problem(password)
    if problem:
        return None, f"kvisa staff: the password must have {problem}"
    return password, None


async def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    password, problem = password_or_problem()
    if password is None:
        print(problem, file=sys.stderr)
        return EXIT_INPUT
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_storage(settings.storage_url) as storage:
        try:
            staff = await StaffStore(storage).add(
                args.name, args.role, password, dt.datetime.now(dt.UTC)
            )
        except InputError as exc:
            print(f"kvisa staff: {exc.field}: expected {exc.expected}", file=sys.stderr)
            return EXIT_INPUT
    print(f"added {staff.name} ({staff.role})")
    return 0


async def staff_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_storage(settings.storage_url) as storage:
        accounts = await StaffStore(storage).all()
    for staff in accounts:
        state = "disabled" if staff.disabled else "active"
        print(f"{staff.name}\t{staff.role}\t{state}\tsince {staff.created_at[:10]}")
    if not accounts:
        print("no accounts: add one with `kvisa staff add NAME --role admin`")
    return 0


async def staff_change(command: str, args: argparse.Namespace, settings: Settings) -> int:
    password = None
    if command == "reset":
        password, problem = password_or_problem()
        if password is None:
            print(problem, file=sys.stderr)
            return EXIT_INPUT
    async with open_storage(settings.storage_url) as storage:
        store = StaffStore(storage)
        try:
            done: Any
            if command == "reset":
                assert password is not None
                done = await store.reset(args.name, password)
            else:
                done = await store.set_disabled(args.name, command == "disable")
        except InputError as exc:
            print(f"kvisa staff: {exc.field}: expected {exc.expected}", file=sys.stderr)
            return EXIT_INPUT
    print(f"{command}: {done.name}")
    return 0
