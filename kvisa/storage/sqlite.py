"""SQLite backend: one file shared by every process of a small deployment.

Each compare-and-set is a single SQL statement, so SQLite's own write lock makes it atomic
across connections and processes; WAL lets readers run while one writer commits.

Versions come from one counter row shared by every key: a write takes the counter plus one as
the record's new version, and a trigger on ``users`` moves the counter up to it inside the
same statement. Versions therefore never repeat, not even for a user deleted and created
anew, so a writer holding a version from before the delete can never overwrite the new record.

A record may expire (``expires_at``, wall-clock seconds): every read hides an expired row, a
write treats it as absent, and a sweep now and then deletes it. Files written before the
column existed get it when opened (`add_expiry_column`), their records lasting as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from kvisa import metrics
from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage.base import (
    FOREVER,
    JSON,
    ContentVersion,
    HeldClaim,
    Record,
    Storage,
    StoredValue,
    check_ttl,
    decode_record,
    encode_record,
)

URL_PREFIX = "sqlite:///"
MEMORY = ":memory:"

# Wait this long for another process's write lock before giving up with "database is locked".
BUSY_TIMEOUT_MS = 5000
# users() reads keys in pages so no read statement stays open while the caller writes.
PAGE_SIZE = 500
VALUE_PAGE_SIZE = 50  # values() reads fewer at once: a value may be a picture or a file
# Expired claims and values are harmless but would pile up; sweep them every this many writes.
SWEEP_EVERY = 100

# One transaction, so a process opening the file at the same time never sees half of it.
# The counter starts at the highest version already stored (files from before it existed);
# the triggers keep it at or above every version ever written, whoever wrote it.
SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS users (
    key        TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    data       TEXT NOT NULL,
    expires_at REAL
);
CREATE TABLE IF NOT EXISTS version_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS users_insert_bumps_version_counter AFTER INSERT ON users
BEGIN
    UPDATE version_counter SET value = NEW.version WHERE id = 1 AND value < NEW.version;
END;
CREATE TRIGGER IF NOT EXISTS users_update_bumps_version_counter AFTER UPDATE OF version ON users
BEGIN
    UPDATE version_counter SET value = NEW.version WHERE id = 1 AND value < NEW.version;
END;
INSERT OR IGNORE INTO version_counter (id, value) SELECT 1, coalesce(max(version), 0) FROM users;
CREATE TABLE IF NOT EXISTS claims (
    name       TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_expires_at ON claims (expires_at);
CREATE TABLE IF NOT EXISTS stored_values (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS stored_values_expires_at ON stored_values (expires_at);
CREATE TABLE IF NOT EXISTS content_versions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    published_at REAL NOT NULL,
    author       TEXT NOT NULL,
    note         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    rollback_of  INTEGER,
    content      BLOB NOT NULL
);
COMMIT;
"""

# Files from before records could expire: their users table gains the column (NULL: lasting).
# Checked and added under the write lock, so two processes opening the file at once add it once.
EXPIRY_INDEX = "CREATE INDEX IF NOT EXISTS users_expires_at ON users (expires_at)"
LIVE = "(expires_at IS NULL OR expires_at > ?)"  # a row not expired at the time given

# The next version: one above every version this file has ever handed out. A missing counter
# row makes it NULL, so the write fails loudly (NOT NULL) instead of reusing a version.
NEXT_VERSION = "(SELECT value FROM version_counter WHERE id = 1) + 1"


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn sqlite3 and file-system failures into StorageError, once, at the boundary."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:  # aiosqlite re-raises sqlite3's own exceptions
        metrics.storage_errors.labels("sqlite").inc()
        raise StorageError(f"sqlite: {exc}") from exc


async def enable_wal(db: aiosqlite.Connection) -> None:
    """Switch the file to WAL (it stays so), retrying while another connection does the same.

    Two processes creating the file at once make one of them get SQLITE_BUSY here at once:
    the busy timeout does not cover a journal-mode change, so we wait ourselves.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute_fetchall("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def worker_stopped(connection: aiosqlite.Connection) -> None:
    """Wait until the worker thread of a connection that failed to open has exited.

    When opening fails, aiosqlite queues the thread's shutdown without waiting for it; the
    thread then reports to this event loop, and if the loop has closed by then it dies with
    "Event loop is closed" (an unhandled thread exception). Waiting here closes that race.
    """
    # aiosqlite >= 0.21 keeps the thread in `_thread`; older releases are the thread.
    worker = getattr(connection, "_thread", connection)
    if not isinstance(worker, threading.Thread) or worker.ident is None:
        return  # never started: nothing will report back
    deadline = time.monotonic() + 1
    while worker.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


async def add_expiry_column(db: aiosqlite.Connection) -> None:
    """Give a users table from an earlier release its expires_at column (once; idempotent)."""
    await db.execute_fetchall("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(users)")}
        if "expires_at" not in columns:
            await db.execute_fetchall("ALTER TABLE users ADD COLUMN expires_at REAL")
        await db.execute_fetchall(EXPIRY_INDEX)
    except BaseException:
        await db.execute_fetchall("ROLLBACK")
        raise
    await db.execute_fetchall("COMMIT")


def encode(data: JSON) -> str:
    return encode_record(data).decode()  # a TEXT column, readable with the sqlite3 shell


def decode(key: str, text: str) -> JSON:
    return decode_record("sqlite", key, text)


class SqliteStorage(Storage):
    """User records, claims and values in one SQLite file, opened on first use.

    `now` is the wall clock in seconds (time.time): every process sharing the file must agree
    on it; tests pass a clock they can move to see records, claims and values expire."""

    def __init__(self, path: str | Path, *, now: Callable[[], float] = time.time) -> None:
        self.path = path if str(path) == MEMORY else Path(path)
        self.now = now
        self._db: aiosqlite.Connection | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._writes_since_sweep = 0

    @classmethod
    def from_url(cls, url: str) -> Self:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
        if not url.startswith(URL_PREFIX) or len(url) == len(URL_PREFIX):
            raise ValueError(f"expected sqlite:///path/to/file.db, got {url!r}")
        return cls(url[len(URL_PREFIX) :])

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        # The lock keeps two first callers from opening two connections (and leaking one).
        async with self._open_lock:
            if self._closed:
                raise StorageError(f"sqlite: {self.path} is closed")
            if self._db is None:
                self._db = await self._open()
            return self._db

    async def _open(self) -> aiosqlite.Connection:
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so every statement below is its own transaction.
        connecting = aiosqlite.connect(self.path, isolation_level=None)
        try:
            db = await connecting
        except BaseException:
            await worker_stopped(connecting)
            raise
        try:
            await db.execute_fetchall(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await enable_wal(db)
            # With WAL, NORMAL survives an application crash; only power loss can drop the
            # last commits, which is acceptable for conversation state.
            await db.executescript("PRAGMA synchronous = NORMAL;" + SCHEMA)
            await add_expiry_column(db)
        except BaseException:
            await db.close()
            raise
        return db

    async def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one write statement; the number of rows it changed."""
        with translate_errors():
            db = await self._connection()
            # A write runs to completion inside execute(), so the rowcount is already final.
            async with db.execute(sql, params) as cursor:
                return cursor.rowcount

    async def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run one query and read every row in a single step on the connection's thread.

        A cursor read in several steps would leave its statement open between them; other
        coroutines' writes on this connection would then hit a stale WAL snapshot and fail
        with "database is locked" (SQLITE_BUSY_SNAPSHOT) without waiting.
        """
        with translate_errors():
            db = await self._connection()
            return list(await db.execute_fetchall(sql, params))

    async def get(self, key: UserKey) -> Record | None:
        sql = f"SELECT version, data FROM users WHERE key = ? AND {LIVE}"
        rows = await self._fetch(sql, (str(key), self.now()))
        if not rows:
            return None
        version, text = rows[0]
        return Record(decode(str(key), text), version)

    async def put(
        self, key: UserKey, data: JSON | None, *, expected_version: int, ttl: float | None = None
    ) -> bool:
        check_ttl(ttl)
        now = self.now()
        if data is None:
            if expected_version == 0:
                # Deleting what must not exist: true exactly when nothing is there.
                return await self.get(key) is None
            sql = f"DELETE FROM users WHERE key = ? AND version = ? AND {LIVE}"
            return await self._execute(sql, (str(key), expected_version, now)) == 1
        expires_at = None if ttl is None or ttl == FOREVER else now + ttl
        # The version comes from the shared counter (see the module docstring) and the
        # trigger bumps the counter within this same statement, so the two cannot drift apart.
        if expected_version == 0:
            # An expired row still there (not swept yet) counts as absent: it is replaced.
            sql = (
                f"INSERT INTO users (key, version, data, expires_at) VALUES (?, {NEXT_VERSION}, "
                "?, ?) ON CONFLICT (key) DO UPDATE SET "
                f"version = max(users.version + 1, {NEXT_VERSION}), data = excluded.data, "
                "expires_at = excluded.expires_at WHERE users.expires_at <= ?"
            )
            written = await self._execute(sql, (str(key), encode(data), expires_at, now)) == 1
        else:
            # max(): never below the record's own version, even if the counter were behind it.
            expiry = "expires_at" if ttl is None else "?"
            params: tuple[Any, ...] = () if ttl is None else (expires_at,)
            sql = (
                f"UPDATE users SET version = max(version + 1, {NEXT_VERSION}), data = ?, "
                f"expires_at = {expiry} WHERE key = ? AND version = ? AND {LIVE}"
            )
            params = (encode(data), *params, str(key), expected_version, now)
            written = await self._execute(sql, params) == 1
        if expires_at is not None:
            await self._sweep_now_and_then(now)
        return written

    async def users(self) -> AsyncIterator[UserKey]:
        # Keyset pagination: each page is a short statement, and rows written or deleted
        # while the caller works through a page never make us skip or repeat a key.
        after = ""
        while True:
            sql = f"SELECT key FROM users WHERE key > ? AND {LIVE} ORDER BY key LIMIT ?"
            rows = await self._fetch(sql, (after, self.now(), PAGE_SIZE))
            for (key,) in rows:
                yield UserKey.parse(key)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    async def records(self) -> AsyncIterator[tuple[UserKey, Record]]:
        # Keyset pagination, as users().
        after = ""
        while True:
            sql = (
                f"SELECT key, version, data, expires_at FROM users WHERE key > ? AND {LIVE} "
                "ORDER BY key LIMIT ?"
            )
            now = self.now()
            rows = await self._fetch(sql, (after, now, PAGE_SIZE))
            for key, version, text, expires_at in rows:
                ttl = None if expires_at is None else expires_at - now
                yield UserKey.parse(key), Record(decode(key, text), version, ttl)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    async def values(self) -> AsyncIterator[StoredValue]:
        # Smaller pages: a value may be a picture or a calendar file.
        after = ""
        while True:
            now = self.now()
            sql = (
                "SELECT name, value, expires_at FROM stored_values "
                "WHERE name > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY name LIMIT ?"
            )
            rows = await self._fetch(sql, (after, now, VALUE_PAGE_SIZE))
            for name, value, expires_at in rows:
                ttl = None if expires_at is None else expires_at - now
                yield StoredValue(name, bytes(value), ttl)
            if len(rows) < VALUE_PAGE_SIZE:
                return
            after = rows[-1][0]

    async def claims(self) -> AsyncIterator[HeldClaim]:
        after = ""
        while True:
            now = self.now()
            sql = (
                "SELECT name, expires_at FROM claims "
                "WHERE name > ? AND expires_at > ? ORDER BY name LIMIT ?"
            )
            rows = await self._fetch(sql, (after, now, PAGE_SIZE))
            for name, expires_at in rows:
                yield HeldClaim(name, expires_at - now)
            if len(rows) < PAGE_SIZE:
                return
            after = rows[-1][0]

    async def claim(self, name: str, ttl: float) -> bool:
        if ttl <= 0:
            raise ValueError(f"claim ttl must be positive, got {ttl}")
        # Wall-clock time, not monotonic: other processes sharing the file must agree on it.
        now = self.now()
        sql = (
            "INSERT INTO claims (name, expires_at) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE claims.expires_at <= ?"
        )
        claimed = await self._execute(sql, (name, now + ttl, now)) == 1
        await self._sweep_now_and_then(now)
        return claimed

    async def release(self, name: str) -> None:
        await self._execute("DELETE FROM claims WHERE name = ?", (name,))

    async def set_value(self, name: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError(f"value ttl must be positive, got {ttl}")
        now = self.now()
        sql = (
            "INSERT INTO stored_values (name, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE "
            "SET value = excluded.value, expires_at = excluded.expires_at"
        )
        await self._execute(sql, (name, bytes(value), None if ttl is None else now + ttl))
        await self._sweep_now_and_then(now)

    async def count(self, name: str, ttl: float) -> int:
        if ttl <= 0:
            raise ValueError(f"counter ttl must be positive, got {ttl}")
        now = self.now()
        # One statement: an expired counter starts again at 1 with a new expiry.
        sql = (
            "INSERT INTO stored_values (name, value, expires_at) VALUES (?, CAST('1' AS BLOB), ?) "
            "ON CONFLICT (name) DO UPDATE SET "
            "value = CASE WHEN stored_values.expires_at <= ? THEN CAST('1' AS BLOB) ELSE "
            "CAST(CAST(CAST(CAST(stored_values.value AS TEXT) AS INTEGER) + 1 AS TEXT) "
            "AS BLOB) END, "
            "expires_at = CASE WHEN stored_values.expires_at <= ? THEN excluded.expires_at "
            "ELSE stored_values.expires_at END "
            "RETURNING CAST(value AS TEXT)"
        )
        rows = await self._fetch(sql, (name, now + ttl, now, now))
        await self._sweep_now_and_then(now)
        return int(rows[0][0])

    async def get_value(self, name: str) -> bytes | None:
        # An expired row may linger until the next sweep; the query itself hides it.
        sql = (
            "SELECT value FROM stored_values "
            "WHERE name = ? AND (expires_at IS NULL OR expires_at > ?)"
        )
        rows = await self._fetch(sql, (name, self.now()))
        return bytes(rows[0][0]) if rows else None

    async def delete_value(self, name: str) -> None:
        await self._execute("DELETE FROM stored_values WHERE name = ?", (name,))

    async def _sweep_now_and_then(self, now: float) -> None:
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= SWEEP_EVERY:
            self._writes_since_sweep = 0
            await self._execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
            await self._execute("DELETE FROM stored_values WHERE expires_at <= ?", (now,))
            await self._execute("DELETE FROM users WHERE expires_at <= ?", (now,))

    async def publish_content(
        self,
        content: bytes,
        *,
        author: str,
        note: str,
        sha256: str,
        published_at: float,
        rollback_of: int | None = None,
    ) -> ContentVersion:
        # AUTOINCREMENT: an id is never handed out twice, and one INSERT is atomic.
        sql = (
            "INSERT INTO content_versions "
            "(published_at, author, note, sha256, rollback_of, content) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
        )
        rows = await self._fetch(
            sql, (published_at, author, note, sha256, rollback_of, bytes(content))
        )
        return ContentVersion(int(rows[0][0]), published_at, author, note, sha256, rollback_of)

    async def _insert_content(self, versions: list[tuple[ContentVersion, bytes]]) -> list[int]:
        # One statement, so all or none; explicit ids move AUTOINCREMENT's sequence up to the
        # highest, so a later publish takes the next id. Seven parameters a version (SQLite
        # allows 32,766 in one statement: about 4,600 versions).
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(versions))
        params = [
            value
            for version, content in versions
            for value in (
                version.id,
                version.published_at,
                version.author,
                version.note,
                version.sha256,
                version.rollback_of,
                content,
            )
        ]
        columns = "id, published_at, author, note, sha256, rollback_of, content"
        # INSERT first: sqlite3 counts the rows changed only of a statement that starts so.
        sql = (
            f"INSERT INTO content_versions ({columns}) "
            f"WITH restored ({columns}) AS (VALUES {rows}) SELECT * FROM restored "
            "WHERE NOT EXISTS (SELECT 1 FROM content_versions "
            "WHERE id IN (SELECT id FROM restored))"
        )
        if await self._execute(sql, tuple(params)) == len(versions):
            return []
        ids = [version.id for version, _ in versions]
        marks = ", ".join("?" * len(ids))
        taken = await self._fetch(
            f"SELECT id FROM content_versions WHERE id IN ({marks})", tuple(ids)
        )
        return [int(row[0]) for row in taken]

    async def content_versions(self) -> list[ContentVersion]:
        sql = (
            "SELECT id, published_at, author, note, sha256, rollback_of "
            "FROM content_versions ORDER BY id"
        )
        return [ContentVersion(*row) for row in await self._fetch(sql)]

    async def content_version(self, version_id: int) -> tuple[ContentVersion, bytes] | None:
        sql = (
            "SELECT id, published_at, author, note, sha256, rollback_of, content "
            "FROM content_versions WHERE id = ?"
        )
        rows = await self._fetch(sql, (version_id,))
        if not rows:
            return None
        *meta, content = rows[0]
        return ContentVersion(*meta), bytes(content)

    async def current_content_id(self) -> int | None:
        rows = await self._fetch("SELECT max(id) FROM content_versions")
        return None if rows[0][0] is None else int(rows[0][0])

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    async def close(self) -> None:
        async with self._open_lock:
            self._closed = True
            db, self._db = self._db, None
        if db is not None:
            with translate_errors():
                await db.close()
