"""Export and import benchmark (issue 14): N applicants (default 100,000) on each backend.

Fills a SQLite file and a Redis prefix with N user records shaped like a real applicant's (an
interview's answers, reported steps, reminders sent, about 1 KB of JSON) plus a broadcast with
them all as recipients (N / 200 chunk values) and V published content versions (default 20,
each the shipped flows/ packed, about 120 KB), then times `kvisa export` (export_store) to a
file and `kvisa import` (import_file) of that file into an empty store of the same backend,
and checks the copy holds as many records and the same current content version. Prints
entries (lines) a second for each, the file's size, and the peak of Python's own allocations
during a second export (tracemalloc: it stays flat as N grows when the export streams; Redis
keeps the key names it has handed out, see RedisStorage._scan).

Run: .venv/bin/python bench/export.py [--users 100000] [--versions 20]
     [--redis-url redis://127.0.0.1:6379/14] [--backends sqlite,redis]
     (on Redis only keys under a fresh prefix are written, then deleted)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvisa.bot.broadcasts.store import BroadcastStore  # noqa: I001
from kvisa.bot.content.versions import pack
from kvisa.bot.data.transfer import export_store, import_file
from kvisa.bot.i18n import Catalogs
from kvisa.bot.paths import flows_dir
from kvisa.identity import UserKey
from kvisa.storage.base import JSON, Storage
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage

BATCH = 500


def applicant(n: int) -> JSON:
    return {
        "lang": "zh" if n % 3 else "en",
        "lang_chosen": True,
        "consent_at": "2026-11-25T04:00:00+00:00",
        "answers": {
            "degree": "master",
            "degree_field_stem": True,
            "degree_from_recognized": True,
            "stem_work_at_recognized": True,
            "birth_date": f"199{n % 10}-04-2{n % 9}",
            "nationality": "IN",
            "residence_country": "SG",
            "passport_expiry": "2030-02-01",
            "planned_application": "2026-12-01",
            "plan": "employed",
            "park": "zhangjiang" if n % 2 else "lingang",
            "key_enterprise": bool(n % 2),
        },
        "awaiting": None,
        "prompt": 17,
        "finished": True,
        "ticked": ["passport", "degree_certificate", "commitment_letter"],
        "events": {"visa_applied": "2026-11-20", "entered": "2026-12-05"},
        "reminders_sent": {
            f"telegram:{n}:work_permit_submitted:7": "2026-12-08T01:00:00+00:00",
            f"telegram:{n}:work_permit_submitted:3": "2026-12-12T01:00:00+00:00",
        },
        "snoozed": {},
        "paused": False,
        "news": True,
        "history": ["degree", "degree_field_stem", "degree_from_recognized", "birth_date"],
    }


async def publish(storage: Storage, versions: int) -> None:
    packed = pack(flows_dir(), Catalogs())[0]
    for n in range(versions):
        await storage.publish_content(
            packed.to_bytes(),
            author="bench",
            note=f"version {n + 1}",
            sha256=packed.sha256,
            published_at=time.time(),
        )


async def fill(storage: Storage, users: int) -> None:
    keys = [UserKey("telegram", str(100_000_000 + n)) for n in range(users)]
    for start in range(0, users, BATCH):
        chunk = keys[start : start + BATCH]
        await asyncio.gather(
            *(
                storage.put(key, applicant(start + i), expected_version=0)
                for i, key in enumerate(chunk)
            )
        )
    await BroadcastStore(storage).create(
        en="Update",
        zh="通知",
        segment="",
        author="cli",
        created_at="2026-11-25T04:00:00+00:00",
        recipients=keys,
    )


async def count_records(storage: Storage) -> int:
    return sum([1 async for _ in storage.users()])


async def run(backend: str, users: int, versions: int, redis_url: str, scratch: Path) -> None:
    prefix = f"kvisa-bench-{uuid.uuid4().hex}"

    def store(name: str) -> Storage:
        if backend == "sqlite":
            return SqliteStorage(scratch / name / "kvisa.db")
        return RedisStorage.from_url(redis_url, prefix=f"{prefix}:{name}")

    source, target = store("source"), store("target")
    try:
        started = time.perf_counter()
        await fill(source, users)
        await publish(source, versions)
        print(
            f"{backend}: filled {users:,} users and {versions} content versions in "
            f"{time.perf_counter() - started:.1f} s"
        )

        path = scratch / f"{backend}.jsonl"
        started = time.perf_counter()
        counts = await export_store(source, path, source=backend, version="bench")
        exported = time.perf_counter() - started
        lines = sum(counts.values())

        started = time.perf_counter()
        done = await import_file(target, path, merge=False, where=backend)
        imported = time.perf_counter() - started
        copied = await count_records(target)
        assert copied == users == done.written["record"], (copied, users, done.written)
        assert done.written["content"] == versions, done.written
        assert await target.current_content_id() == await source.current_content_id()

        tracemalloc.start()
        await export_store(source, path, source=backend, version="bench", replace=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        size = path.stat().st_size
        print(
            f"{backend}: export {lines:,} lines ({counts}) in {exported:.1f} s = "
            f"{lines / exported:,.0f} lines/s ({users / exported:,.0f} records/s); "
            f"file {size / 1e6:.1f} MB; peak traced memory {peak / 1e6:.1f} MB"
        )
        print(
            f"{backend}: import (check, then write) in {imported:.1f} s = "
            f"{lines / imported:,.0f} lines/s ({users / imported:,.0f} records/s); "
            f"{copied:,} records in the copy"
        )
    finally:
        await source.close()
        await target.close()
        if backend == "redis":
            from redis.asyncio import Redis

            client = Redis.from_url(redis_url)
            async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                await client.delete(key)
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--backends", default="sqlite,redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for backend in args.backends.split(","):
            asyncio.run(run(backend, args.users, args.versions, args.redis_url, Path(scratch)))


if __name__ == "__main__":
    main()
