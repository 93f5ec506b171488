"""Faceted, ordered collections beside the storage: the workspace's case index and its audit
log. Each entry of a named collection has a member name, a score (its order), facets (labels
it can be filtered by, several per entry) and a JSON document. A query intersects groups of
facets (any facet of a group, every group), keeps a score range and returns one page with the
total: on Redis a sorted set per facet and one script, so a filtered page of 100,000 cases
costs an intersection in Redis rather than a scan in Python.

Redis keys sit under the storage's namespace (`<prefix>:ws:<collection>:...`) and share its
client; SQLite keeps a file `workspace.db` beside the storage's database.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kvisa.errors import StorageError
from kvisa.storage.base import Storage

JSON = dict[str, Any]
Groups = Sequence[Sequence[str]]  # every group must hold: any facet of a group


@dataclass(frozen=True)
class Entry:
    member: str
    score: float
    facets: frozenset[str]
    doc: JSON


@dataclass(frozen=True)
class Page:
    total: int  # entries the query selects, on every page
    docs: list[tuple[str, JSON]]  # (member, document) of this page, in score order


class Catalog(ABC):
    """Faceted collections of JSON documents, ordered by score."""

    @abstractmethod
    async def put(self, name: str, entries: Iterable[Entry]) -> None:
        """Add or replace entries (facets an entry had before and not now are dropped)."""

    @abstractmethod
    async def remove(self, name: str, member: str) -> None:
        """Forget an entry (nothing happens when there is none)."""

    @abstractmethod
    async def get(self, name: str, member: str) -> JSON | None:
        """The document of one entry."""

    @abstractmethod
    async def query(
        self,
        name: str,
        groups: Groups = (),
        low: float = -math.inf,
        high: float = math.inf,
        offset: int = 0,
        limit: int = 50,
        reverse: bool = False,
    ) -> Page:
        """The entries with a facet of every group and a score in [low, high], by score (then
        member; highest first when `reverse`), `limit` of them from `offset`."""

    @abstractmethod
    async def clear(self, name: str) -> None:
        """Forget every entry of a collection."""

    async def close(self) -> None:  # noqa: B027 - optional: a catalog sharing a client has none
        """Release what the catalog opened itself."""


def open_catalog(storage: Storage) -> Catalog:
    """The catalog beside a storage: Redis keys under its namespace, or SQLite's workspace.db."""
    from kvisa.storage.redis import RedisStorage
    from kvisa.storage.sqlite import SqliteStorage

    if isinstance(storage, RedisStorage):
        return RedisCatalog(storage.client, storage.namespace)
    if isinstance(storage, SqliteStorage):
        path = storage.path
        return SqliteCatalog(path.with_name("workspace.db") if isinstance(path, Path) else None)
    raise StorageError(f"no workspace catalog for {type(storage).__name__}")


def bound(value: float) -> str:
    return "+inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)


# KEYS: doc hash, all zset, facets hash. ARGV: facet key prefix, then member, score, doc,
# facets (JSON list) for each entry. Facets the entry had before and has not now are dropped.
PUT_SCRIPT = """
local prefix = ARGV[1]
for i = 2, #ARGV, 4 do
    local member, score, doc, facets = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local old = redis.call('HGET', KEYS[3], member)
    local keep = {}
    for _, f in ipairs(cjson.decode(facets)) do keep[f] = true end
    if old then
        for _, f in ipairs(cjson.decode(old)) do
            if not keep[f] then redis.call('ZREM', prefix .. f, member) end
        end
    end
    for f, _ in pairs(keep) do redis.call('ZADD', prefix .. f, score, member) end
    redis.call('HSET', KEYS[1], member, doc)
    redis.call('ZADD', KEYS[2], score, member)
    redis.call('HSET', KEYS[3], member, facets)
end
return 1
"""

# KEYS: doc hash, all zset, facets hash. ARGV: facet key prefix, member.
REMOVE_SCRIPT = """
local old = redis.call('HGET', KEYS[3], ARGV[2])
if old then
    for _, f in ipairs(cjson.decode(old)) do redis.call('ZREM', ARGV[1] .. f, ARGV[2]) end
end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS: doc hash, all zset, result key, one scratch key per group, then the facet keys of
# every group. ARGV: low, high, offset, limit, reverse ("1"/"0"), number of groups, and the
# size of each group. A group of one facet is its key itself; several are united first; the
# groups are intersected into the result key. Every facet set holds an entry at its own score,
# so MIN keeps that score. Scratch and
# result keys are deleted before the script ends.
QUERY_SCRIPT = """
local low, high = ARGV[1], ARGV[2]
local offset, limit, reverse = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local ngroups = tonumber(ARGV[6])
local source = KEYS[2]
local scratch = {}
if ngroups > 0 then
    local at = 4 + ngroups
    local sets = {}
    for g = 1, ngroups do
        local size = tonumber(ARGV[6 + g])
        if size == 1 then
            table.insert(sets, KEYS[at])
        else
            local keys = {}
            for k = at, at + size - 1 do table.insert(keys, KEYS[k]) end
            table.insert(keys, 'AGGREGATE')
            table.insert(keys, 'MIN')
            redis.call('ZUNIONSTORE', KEYS[3 + g], size, unpack(keys))
            table.insert(sets, KEYS[3 + g])
            table.insert(scratch, KEYS[3 + g])
        end
        at = at + size
    end
    if #sets == 1 then
        source = sets[1]
    else
        table.insert(sets, 'AGGREGATE')
        table.insert(sets, 'MIN')
        redis.call('ZINTERSTORE', KEYS[3], #sets - 2, unpack(sets))
        source = KEYS[3]
        table.insert(scratch, KEYS[3])
    end
end
local total = redis.call('ZCOUNT', source, low, high)
local members
if reverse then
    members = redis.call('ZRANGE', source, high, low, 'BYSCORE', 'REV', 'LIMIT', offset, limit)
else
    members = redis.call('ZRANGE', source, low, high, 'BYSCORE', 'LIMIT', offset, limit)
end
local docs = {}
if #members > 0 then docs = redis.call('HMGET', KEYS[1], unpack(members)) end
if #scratch > 0 then redis.call('DEL', unpack(scratch)) end
return {total, members, docs}
"""

PUT_BATCH = 200  # entries a put script handles at once (a rebuild of 100,000 in pages)


class RedisCatalog(Catalog):
    def __init__(self, client: Redis, prefix: str = "kvisa") -> None:
        self.client = client
        self.prefix = prefix
        self._put = client.register_script(PUT_SCRIPT)
        self._remove = client.register_script(REMOVE_SCRIPT)
        self._query = client.register_script(QUERY_SCRIPT)

    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}:ws:{name}"
        return [f"{base}:doc", f"{base}:all", f"{base}:facets"]

    def _facet_prefix(self, name: str) -> str:
        return f"{self.prefix}:ws:{name}:f:"

    async def put(self, name: str, entries: Iterable[Entry]) -> None:
        batch: list[Any] = []
        for entry in entries:
            batch += [
                entry.member,
                repr(float(entry.score)),
                orjson.dumps(entry.doc),
                orjson.dumps(sorted(entry.facets)),
            ]
            if len(batch) >= 4 * PUT_BATCH:
                await self._run_put(name, batch)
                batch = []
        if batch:
            await self._run_put(name, batch)

    async def _run_put(self, name: str, batch: list[Any]) -> None:
        try:
            await self._put(keys=self._keys(name), args=[self._facet_prefix(name), *batch])
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis: workspace catalog: {exc}") from exc

    async def remove(self, name: str, member: str) -> None:
        try:
            await self._remove(keys=self._keys(name), args=[self._facet_prefix(name), member])
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis: workspace catalog: {exc}") from exc

    async def get(self, name: str, member: str) -> JSON | None:
        try:
            raw = await self.client.hget(self._keys(name)[0], member)
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis: workspace catalog: {exc}") from exc
        return None if raw is None else dict(orjson.loads(raw))

    async def query(
        self,
        name: str,
        groups: Groups = (),
        low: float = -math.inf,
        high: float = math.inf,
        offset: int = 0,
        limit: int = 50,
        reverse: bool = False,
    ) -> Page:
        doc, all_, _ = self._keys(name)
        scratch = f"{self.prefix}:ws:{name}:tmp:{secrets.token_hex(8)}"
        facet = self._facet_prefix(name)
        groups = [sorted(set(g)) for g in groups]
        if any(not g for g in groups):
            return Page(0, [])
        keys = [doc, all_, scratch, *(f"{scratch}:{n}" for n in range(len(groups)))]
        keys += [facet + f for g in groups for f in g]
        args: list[Any] = [bound(low), bound(high), offset, limit, int(reverse), len(groups)]
        args += [len(g) for g in groups]
        try:
            total, members, docs = await self._query(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis: workspace catalog: {exc}") from exc
        return Page(
            int(total),
            [
                (m.decode() if isinstance(m, bytes) else str(m), dict(orjson.loads(d)))
                for m, d in zip(members, docs, strict=True)
                if d is not None
            ],
        )

    async def clear(self, name: str) -> None:
        pattern = f"{self.prefix}:ws:{name}:*".replace("[", "\\[").replace("]", "\\]")
        try:
            async for key in self.client.scan_iter(match=pattern, count=500):
                await self.client.delete(key)
        except (RedisError, OSError) as exc:
            raise StorageError(f"redis: workspace catalog: {exc}") from exc


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    name TEXT NOT NULL, member TEXT NOT NULL, score REAL NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (name, member)
);
CREATE INDEX IF NOT EXISTS entries_by_score ON entries (name, score, member);
CREATE TABLE IF NOT EXISTS facets (
    name TEXT NOT NULL, facet TEXT NOT NULL, member TEXT NOT NULL,
    PRIMARY KEY (name, facet, member)
);
CREATE INDEX IF NOT EXISTS facets_of_member ON facets (name, member);
"""
FINITE = 1e300  # SQLite compares REAL; infinite bounds are clamped to this


class SqliteCatalog(Catalog):
    """One connection used from worker threads, one statement group at a time (a lock)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                str(self.path or ":memory:"), check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA busy_timeout = 5000")
            if self.path is not None:
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SQLITE_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, work: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                db = self._connection()
                try:
                    db.execute("BEGIN IMMEDIATE")
                    result = work(db)
                    db.execute("COMMIT")
                    return result
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: workspace catalog: {exc}") from exc

    async def put(self, name: str, entries: Iterable[Entry]) -> None:
        rows = list(entries)

        def work(db: sqlite3.Connection) -> None:
            for e in rows:
                db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                    (name, e.member, e.score, orjson.dumps(e.doc).decode()),
                )
                db.execute("DELETE FROM facets WHERE name = ? AND member = ?", (name, e.member))
                db.executemany(
                    "INSERT INTO facets VALUES (?, ?, ?)", [(name, f, e.member) for f in e.facets]
                )

        await self._run(work)

    async def remove(self, name: str, member: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM entries WHERE name = ? AND member = ?", (name, member))
            db.execute("DELETE FROM facets WHERE name = ? AND member = ?", (name, member))

        await self._run(work)

    async def get(self, name: str, member: str) -> JSON | None:
        def work(db: sqlite3.Connection) -> Any:
            return db.execute(
                "SELECT doc FROM entries WHERE name = ? AND member = ?", (name, member)
            ).fetchone()

        row = await self._run(work)
        return None if row is None else dict(orjson.loads(row[0]))

    async def query(
        self,
        name: str,
        groups: Groups = (),
        low: float = -math.inf,
        high: float = math.inf,
        offset: int = 0,
        limit: int = 50,
        reverse: bool = False,
    ) -> Page:
        groups = [sorted(set(g)) for g in groups]
        if any(not g for g in groups):
            return Page(0, [])
        where = "e.name = ? AND e.score >= ? AND e.score <= ?"
        params: list[Any] = [name, max(low, -FINITE), min(high, FINITE)]
        for group in groups:
            marks = ",".join("?" * len(group))
            where += (
                " AND e.member IN (SELECT member FROM facets"
                f" WHERE name = ? AND facet IN ({marks}))"
            )
            params += [name, *group]
        order = "DESC" if reverse else "ASC"

        def work(db: sqlite3.Connection) -> tuple[int, list[Any]]:
            total = db.execute(f"SELECT COUNT(*) FROM entries e WHERE {where}", params).fetchone()
            rows = db.execute(
                f"SELECT member, doc FROM entries e WHERE {where}"
                f" ORDER BY score {order}, member {order} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return int(total[0]), rows

        total, rows = await self._run(work)
        return Page(total, [(m, dict(orjson.loads(d))) for m, d in rows])

    async def clear(self, name: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM entries WHERE name = ?", (name,))
            db.execute("DELETE FROM facets WHERE name = ?", (name,))

        await self._run(work)

    async def close(self) -> None:
        def closing() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(closing)
