"""CPU time of the engine's turns in-process, on Redis: 200 applicants through consent, four
answers and four /mydata (2,000 turns), five passes; with --linked each applicant's identity
is linked beforehand to an applicant founded elsewhere (bot/applicants.py), so every turn
finds its profile through a forward. Less at the mercy of a loaded machine than the
end-to-end benchmarks (no HTTP, no second process).

Run: .venv/bin/python bench/turns.py [--linked] [--applicants 200] [--passes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage
from tests.support import ACADEMIC, Chat, engine_on

PREFIX = "bench-turns"
ANSWERED = ("degree", "degree_field_stem", "degree_from_recognized", "stem_work_at_recognized")


def clean(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def link(url: str, applicants: int) -> None:
    with redis.Redis.from_url(url) as client, client.pipeline(transaction=False) as pipe:
        for n in range(applicants):
            founder, me = f"wechat:oF{n}", f"console:u{n}"
            applicant = {"schema": 2, "identities": [founder, me], "lang": "en"}
            forward = {"linked_to": founder, "keep": "theirs", "link_id": f"{me}@bench"}
            pipe.hset(f"{PREFIX}:user:{founder}", mapping={"v": 1, "data": json.dumps(applicant)})
            pipe.hset(f"{PREFIX}:user:{me}", mapping={"v": 1, "data": json.dumps(forward)})
        pipe.execute()


async def one_pass(url: str, applicants: int, linked: bool) -> float:
    """CPU microseconds per turn."""
    clean(url)
    if linked:
        link(url, applicants)
    async with RedisStorage.from_url(url, prefix=PREFIX) as storage:
        engine = engine_on(storage)

        async def applicant(n: int) -> None:
            chat = Chat(engine, user=UserKey("console", f"u{n}"))
            await chat.send("/start")
            await chat.choose("agree")
            for question in ANSWERED:
                value = ACADEMIC[question]
                await (chat.choose(value) if value in chat.option_ids else chat.send(value))
            for _ in range(4):
                await chat.send("/mydata")

        cpu = time.process_time()
        await asyncio.gather(*(applicant(n) for n in range(applicants)))
        return (time.process_time() - cpu) / (applicants * 10) * 1e6


async def main(args: argparse.Namespace) -> None:
    await one_pass(args.redis, 20, args.linked)  # warm up
    passes = [await one_pass(args.redis, args.applicants, args.linked) for _ in range(args.passes)]
    clean(args.redis)
    print(
        f"{'linked' if args.linked else 'unlinked'}: CPU per turn median "
        f"{statistics.median(passes):.0f} us ({', '.join(f'{p:.0f}' for p in passes)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--linked", action="store_true")
    parser.add_argument("--applicants", type=int, default=200)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument(
        "--redis", default=os.environ.get("KVISA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    asyncio.run(main(parser.parse_args()))
