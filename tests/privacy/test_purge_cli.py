"""`kvisa purge [--dry-run]` as an operator runs it: a real process on a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.test_cli import kvisa

NOW = dt.datetime.now(dt.UTC)


def ago(days: float) -> str:
    return (NOW - dt.timedelta(days=days)).isoformat()


CONSENT = ago(900)
STORED = {
    UserKey("telegram", "active"): {"consent_at": CONSENT, "last_seen": ago(5)},
    UserKey("telegram", "silent"): {"consent_at": CONSENT, "last_seen": ago(600)},
    UserKey("telegram", "told"): {
        "consent_at": CONSENT,
        "last_seen": ago(640),
        "retention_notice_at": ago(40),
    },
    UserKey("wechat", "legacy1"): {"awaiting": {"kind": "consent"}, "last_seen": ago(3)},
    UserKey("wechat", "legacy2"): {"awaiting": {"kind": "consent"}, "last_seen": ago(90)},
}


def store(data_dir: Path) -> None:
    async def fill() -> None:
        async with SqliteStorage(data_dir / "kvisa.db") as storage:
            for user, data in STORED.items():
                await storage.put(user, data, expected_version=0)

    asyncio.run(fill())


def users(data_dir: Path) -> set[str]:
    async def listed() -> set[str]:
        async with SqliteStorage(data_dir / "kvisa.db") as storage:
            return {str(key) async for key in storage.users()}

    return asyncio.run(listed())


def test_a_dry_run_prints_how_many_and_erases_nothing(tmp_path: Path) -> None:
    store(tmp_path / "var")

    run = kvisa("purge", "--dry-run", cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "kvisa purge: 1 applicants silent for 18 months would be told",
        "kvisa purge: 1 applicants told 30 days ago or more would be erased",
        "kvisa purge: 2 records of people who never consented would be erased",
        "kvisa purge: 0 applicants told are within the 30 days",
    ]
    assert users(tmp_path / "var") == {str(user) for user in STORED}


def test_purge_erases_what_is_due_and_leaves_the_notices_to_serve(tmp_path: Path) -> None:
    store(tmp_path / "var")

    run = kvisa("purge", "--lang", "zh", cwd=tmp_path, env={"KVISA_RETENTION_MONTHS": "19"})

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "kvisa purge: 已删除 1 位在 30 天前或更早已收到通知的申请人",
        "kvisa purge: 已删除 2 条从未同意隐私说明者的记录",
        "kvisa purge: 1 位已 19 个月未联系的申请人将由 kvisa serve 发送通知",
    ]
    assert users(tmp_path / "var") == {"telegram:active", "telegram:silent"}


def test_a_bad_retention_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = kvisa("purge", "--dry-run", cwd=tmp_path, env={"KVISA_RETENTION_MONTHS": "eighteen"})

    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "kvisa: KVISA_RETENTION_MONTHS: must be a whole number of months from 1 to 120, "
        "got 'eighteen'; for example KVISA_RETENTION_MONTHS=18"
    ]
    assert run.stdout == ""
