"""`kvisa export`, `kvisa import` and `kvisa migrate` as an operator runs them: real processes,
real files, one line per problem and never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis

from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.data.conftest import fill, snapshot
from tests.support import free_port


def kvisa(
    *args: str, cwd: Path, data_dir: str = "var", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**environment, "KVISA_DATA_DIR": str(cwd / data_dir), **env},
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run


async def filled_sqlite(path: Path) -> None:
    async with SqliteStorage(path) as storage:
        await fill(storage)


def test_export_then_import_into_another_data_dir(tmp_path: Path) -> None:
    asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))

    exported = kvisa("export", "kvisa.jsonl", cwd=tmp_path)
    imported = kvisa("import", "kvisa.jsonl", cwd=tmp_path, data_dir="copy")

    assert exported.returncode == 0, exported.stderr
    assert imported.returncode == 0, imported.stderr
    assert "kvisa.jsonl" in exported.stdout

    async def compare() -> None:
        async with (
            SqliteStorage(tmp_path / "var" / "kvisa.db") as source,
            SqliteStorage(tmp_path / "copy" / "kvisa.db") as copy,
        ):
            (await snapshot(source)).assert_same_as(await snapshot(copy))

    asyncio.run(compare())


def test_a_second_import_without_merge_is_refused_in_one_line(tmp_path: Path) -> None:
    asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))
    kvisa("export", "kvisa.jsonl", cwd=tmp_path)

    again = kvisa("import", "kvisa.jsonl", cwd=tmp_path)
    merged = kvisa("import", "kvisa.jsonl", "--merge", cwd=tmp_path)

    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "--merge" in again.stderr
    assert merged.returncode == 0, merged.stderr


def test_a_bad_file_gets_one_line_per_problem_naming_the_line(tmp_path: Path) -> None:
    asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))
    kvisa("export", "kvisa.jsonl", cwd=tmp_path)
    rows = (tmp_path / "kvisa.jsonl").read_bytes().splitlines(keepends=True)
    rows[1] = b'{"kind": "record", "key": 7, "data": {}}\n'
    rows[3] = b"garbage\n"
    version = orjson.loads(rows[-1])
    rows[-1] = orjson.dumps({**version, "sha256": "0" * 64}) + b"\n"  # a content version
    (tmp_path / "kvisa.jsonl").write_bytes(b"".join(rows))

    run = kvisa("import", "kvisa.jsonl", cwd=tmp_path, data_dir="copy")
    chinese = kvisa("import", "kvisa.jsonl", "--lang", "zh", cwd=tmp_path, data_dir="copy")

    assert run.returncode == 1
    assert run.stderr.splitlines()[0].startswith("kvisa import: line 2: record: key:")
    assert run.stderr.splitlines()[1].startswith("kvisa import: line 4: not JSON")
    assert run.stderr.splitlines()[2].startswith(
        f"kvisa import: line {len(rows)}: content: sha256: the content hashes to "
        f'{version["sha256"]}, not "{"0" * 64}"'
    )
    assert len(run.stderr.splitlines()) == 3
    assert f"第 {len(rows)} 行" in chinese.stderr and version["sha256"] in chinese.stderr
    assert len(chinese.stderr.splitlines()) == 3


def test_problems_are_told_in_chinese_with_lang_zh(tmp_path: Path) -> None:
    (tmp_path / "kvisa.jsonl").write_text("hello\n")

    run = kvisa("import", "kvisa.jsonl", "--lang", "zh", cwd=tmp_path)

    assert run.returncode == 1
    assert "第 1 行" in run.stderr


def test_a_missing_file_and_a_missing_store_are_named(tmp_path: Path) -> None:
    missing = kvisa("import", "nowhere.jsonl", cwd=tmp_path)
    nothing = kvisa("export", "kvisa.jsonl", cwd=tmp_path)

    assert missing.returncode == 1 and "nowhere.jsonl" in missing.stderr
    assert nothing.returncode == 1 and "kvisa.db" in nothing.stderr
    assert not (tmp_path / "var").exists()  # looking created nothing


@pytest.mark.parametrize(
    "url", ["sqlite:///var/other.db", "http://127.0.0.1:6379", "redis://", "redis://host/zero"]
)
def test_migrate_refuses_a_target_that_is_no_redis_url(tmp_path: Path, url: str) -> None:
    asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))

    run = kvisa("migrate", "--to", url, cwd=tmp_path)

    assert run.returncode == 2
    assert run.stderr.startswith("kvisa migrate: --to:") and len(run.stderr.splitlines()) == 1


def test_migrate_names_a_redis_that_does_not_answer(tmp_path: Path) -> None:
    asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))
    run = kvisa("migrate", "--to", f"redis://127.0.0.1:{free_port()}/0", cwd=tmp_path)

    assert run.returncode == 1
    assert "does not answer" in run.stderr and len(run.stderr.splitlines()) == 1


@pytest.mark.redis
def test_migrate_moves_the_sqlite_store_to_redis(tmp_path: Path, redis_url: str) -> None:
    # The command writes under the bot's own prefix, "kvisa": one run at a time on this server.
    client = redis.Redis.from_url(redis_url)
    with client, client.lock("kvisa-test:migrate-cli", timeout=120, blocking_timeout=120):
        stale = list(client.scan_iter(match="kvisa:*", count=500))
        if stale:
            client.delete(*stale)
        asyncio.run(filled_sqlite(tmp_path / "var" / "kvisa.db"))
        try:
            run = kvisa("migrate", "--to", redis_url, cwd=tmp_path)
            again = kvisa("migrate", "--to", redis_url, cwd=tmp_path)

            assert run.returncode == 0, run.stderr
            assert "verified" in run.stdout
            assert again.returncode == 1 and "not empty" in again.stderr

            async def compare() -> None:
                async with (
                    SqliteStorage(tmp_path / "var" / "kvisa.db") as source,
                    RedisStorage.from_url(redis_url) as target,
                ):
                    (await snapshot(source)).assert_same_as(await snapshot(target))

            asyncio.run(compare())
        finally:
            stale = list(client.scan_iter(match="kvisa:*", count=500))
            if stale:
                client.delete(*stale)
