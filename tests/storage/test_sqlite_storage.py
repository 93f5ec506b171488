"""What only the SQLite backend does: its file, its URL, its pragmas and its failures."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage import open_storage
from kvisa.storage.sqlite import SqliteStorage

ALICE = UserKey("telegram", "1001")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "state" / "kvisa.db"


def connect(path: Path) -> closing[sqlite3.Connection]:
    """A plain autocommit connection that a `with` block closes (sqlite3's own only commits)."""
    return closing(sqlite3.connect(path, isolation_level=None))


async def test_open_storage_builds_sqlite_from_its_url(db_path: Path) -> None:
    async with open_storage(f"sqlite:///{db_path}") as storage:
        assert isinstance(storage, SqliteStorage)
        assert storage.path == db_path


def test_from_url_keeps_a_relative_path_relative() -> None:
    assert SqliteStorage.from_url("sqlite:///var/kvisa.db").path == Path("var/kvisa.db")


@pytest.mark.parametrize("url", ["sqlite://kvisa.db", "sqlite:///", "postgres:///kvisa"])
def test_from_url_rejects_a_malformed_url(url: str) -> None:
    with pytest.raises(ValueError):
        SqliteStorage.from_url(url)


async def test_creating_the_storage_touches_no_file(db_path: Path) -> None:
    storage = SqliteStorage(db_path)
    await storage.close()

    assert not db_path.parent.exists()


async def test_first_use_creates_the_missing_parent_directory(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        await storage.ping()

    assert db_path.is_file()


async def test_the_file_is_switched_to_wal_for_concurrent_readers(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        await storage.ping()

    with connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_memory_url_keeps_records_for_the_life_of_the_instance() -> None:
    async with SqliteStorage.from_url("sqlite:///:memory:") as storage:
        await storage.put(ALICE, {"lang": "zh"}, expected_version=0)

        record = await storage.get(ALICE)

        assert record is not None
        assert record.data == {"lang": "zh"}


async def test_a_directory_as_the_database_path_raises_storage_error(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())

    async with SqliteStorage(tmp_path) as storage:
        with pytest.raises(StorageError):
            await storage.ping()

    # aiosqlite's worker for the failed connection must be gone before the loop closes, or
    # it dies later with "Event loop is closed" and fails some other test.
    assert [t for t in threading.enumerate() if t not in threads_before] == []


async def test_a_file_where_the_parent_directory_should_be_raises_storage_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "var").write_text("not a directory")

    async with SqliteStorage(tmp_path / "var" / "kvisa.db") as storage:
        with pytest.raises(StorageError):
            await storage.ping()


async def test_a_file_that_is_not_a_database_raises_storage_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite, " * 100)

    async with SqliteStorage(db_path) as storage:
        with pytest.raises(StorageError):
            await storage.get(ALICE)


async def test_a_record_that_is_not_json_raises_storage_error(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        await storage.put(ALICE, {"lang": "zh"}, expected_version=0)
        with connect(db_path) as db:
            db.execute("UPDATE users SET data = '{broken' WHERE key = ?", (str(ALICE),))

        with pytest.raises(StorageError):
            await storage.get(ALICE)


async def test_a_deleted_user_leaves_no_row_behind(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        await storage.put(ALICE, {"lang": "zh"}, expected_version=0)
        record = await storage.get(ALICE)
        assert record is not None
        assert await storage.put(ALICE, None, expected_version=record.version)

    with connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert db.execute("SELECT id, value FROM version_counter").fetchall() == [(1, 1)]


async def test_versions_come_from_one_counter_shared_by_every_user(db_path: Path) -> None:
    bob = UserKey("wechat", "oAbC")
    async with SqliteStorage(db_path) as storage:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        await storage.put(bob, {"n": 1}, expected_version=0)
        await storage.put(ALICE, {"n": 2}, expected_version=1)

        alice, bobs = await storage.get(ALICE), await storage.get(bob)

    assert alice is not None and bobs is not None
    assert (alice.version, bobs.version) == (3, 2)


async def test_a_file_from_before_the_counter_continues_above_its_versions(db_path: Path) -> None:
    # The layout before the version counter existed, with a record at version 7.
    db_path.parent.mkdir(parents=True)
    with connect(db_path) as db:
        db.execute(
            "CREATE TABLE users "
            "(key TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)"
        )
        db.execute("INSERT INTO users VALUES (?, 7, '{}')", (str(ALICE),))

    async with SqliteStorage(db_path) as storage:
        assert await storage.put(ALICE, None, expected_version=7)
        assert await storage.put(ALICE, {"n": 1}, expected_version=0)

        recreated = await storage.get(ALICE)

    assert recreated is not None
    assert recreated.version == 8


async def test_a_counter_behind_a_record_still_gives_it_a_higher_version(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        await storage.put(ALICE, {"n": 2}, expected_version=1)
        with connect(db_path) as db:  # e.g. a hand-edited file
            db.execute("UPDATE version_counter SET value = 0")

        assert await storage.put(ALICE, {"n": 3}, expected_version=2)

        record = await storage.get(ALICE)
        assert record is not None
        assert record.version == 3


async def test_a_closed_storage_raises_storage_error(db_path: Path) -> None:
    storage = SqliteStorage(db_path)
    await storage.ping()
    await storage.close()

    with pytest.raises(StorageError):
        await storage.get(ALICE)


async def test_claim_rejects_a_ttl_that_is_not_positive(db_path: Path) -> None:
    async with SqliteStorage(db_path) as storage:
        with pytest.raises(ValueError):
            await storage.claim("update:1", ttl=0)


# --- records that expire ---------------------------------------------------------------------

# The users table of the release before records could expire, as it created it.
RELEASE_1_SCHEMA = """
CREATE TABLE users (key TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE version_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO version_counter VALUES (1, 4);
INSERT INTO users VALUES ('telegram:1001', 4, '{"lang": "zh", "consent_at": "2026-01-01"}');
"""


class MovableClock:
    """Wall-clock seconds that stand still until moved."""

    def __init__(self) -> None:
        self.seconds = 1_800_000_000.0

    def __call__(self) -> float:
        return self.seconds


async def test_a_record_expires_by_the_injected_clock_and_is_swept(db_path: Path) -> None:
    clock = MovableClock()
    async with SqliteStorage(db_path, now=clock) as storage:
        await storage.put(ALICE, {"asked": "consent"}, expected_version=0, ttl=24 * 3600)
        clock.seconds += 24 * 3600 - 1
        assert await storage.get(ALICE) is not None

        clock.seconds += 1

        assert await storage.get(ALICE) is None
        for n in range(100):  # the writes after which expired rows are swept
            await storage.claim(f"c{n}", ttl=60)
    with connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


async def test_a_file_from_before_expiry_gains_the_column_and_keeps_its_records(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    with connect(db_path) as db:
        db.executescript(RELEASE_1_SCHEMA)

    for _ in range(2):  # opening again changes nothing
        async with SqliteStorage(db_path) as storage:
            record = await storage.get(ALICE)
            assert record is not None
            assert record.data == {"lang": "zh", "consent_at": "2026-01-01"}
            assert record.version == 4

    with connect(db_path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(users)")]
        assert columns == ["key", "version", "data", "expires_at"]
        assert db.execute("SELECT expires_at FROM users").fetchall() == [(None,)]


async def test_two_processes_opening_an_old_file_at_once_both_work(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with connect(db_path) as db:
        db.executescript(RELEASE_1_SCHEMA)

    async with SqliteStorage(db_path) as first, SqliteStorage(db_path) as second:
        records = await asyncio.gather(first.get(ALICE), second.get(ALICE))
        assert all(record is not None for record in records)
        assert await second.put(ALICE, {"n": 1}, expected_version=4, ttl=60)


async def test_a_record_ttl_is_stored_as_an_absolute_time(db_path: Path) -> None:
    clock = MovableClock()
    async with SqliteStorage(db_path, now=clock) as storage:
        await storage.put(ALICE, {"n": 1}, expected_version=0, ttl=3600)

    with connect(db_path) as db:
        assert db.execute("SELECT expires_at FROM users").fetchone() == (clock.seconds + 3600,)
