"""Writes tests/links/release-0/: what the release before linking stored, on both backends.

Run once from that release's checkout (it was run at db18558, before linking existed):
`python tests/links/make_release_data.py`. It plays a few conversations through that
release's engine into a SQLite file and into Redis, then dumps the Redis keys (hash fields and
time to live) as JSON, so the migration tests read exactly what that release wrote."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kvisa.identity import UserKey  # noqa: E402
from kvisa.storage.base import Storage  # noqa: E402
from kvisa.storage.redis import RedisStorage  # noqa: E402
from kvisa.storage.sqlite import SqliteStorage  # noqa: E402
from tests.support import ACADEMIC, Chat, engine_on  # noqa: E402

OUT = Path(__file__).resolve().parent / "release-0"
PREFIX = "kvisa-release-0"
REDIS = "redis://127.0.0.1:6379/15"


async def play(storage: Storage) -> None:
    engine = engine_on(storage)
    done = Chat(engine, user=UserKey("telegram", "1001"))
    await done.interview(**ACADEMIC)
    await done.send("/timeline")
    await done.choose("entered")
    await done.send("2026-11-20")
    half = Chat(engine, user=UserKey("wechat", "oHalfway"), lang_hint="zh-CN")
    await half.send("/start")
    await half.choose("agree")
    await half.choose("master")
    await Chat(engine, user=UserKey("telegram", "1002")).send("/start")  # never agreed
    gone = Chat(engine, user=UserKey("wechat", "oUnfollowed"))
    await gone.send("/start")
    await gone.choose("agree")
    await engine.mark_inactive(gone.user)


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    db = OUT / "kvisa.db"
    db.unlink(missing_ok=True)
    async with SqliteStorage(db) as sqlite:
        await play(sqlite)
    client: Any = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{PREFIX}:*"):
        client.delete(key)
    async with RedisStorage.from_url(REDIS, prefix=PREFIX) as storage:
        await play(storage)
    dump = []
    for raw in sorted(client.scan_iter(match=f"{PREFIX}:*")):
        key = raw.decode()
        name = key.removeprefix(f"{PREFIX}:")
        kind = client.type(key).decode()
        ttl = client.pttl(key)
        if kind == "hash":
            fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
            dump.append({"key": name, "hash": fields, "pttl": ttl})
        elif kind == "string":
            dump.append({"key": name, "string": client.get(key).decode(), "pttl": ttl})
        client.delete(key)
    (OUT / "redis.json").write_text(json.dumps(dump, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {db} and {len(dump)} Redis keys")


if __name__ == "__main__":
    asyncio.run(main())
