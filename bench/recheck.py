"""Re-check benchmark (issue 15) on a real Redis.

`kvisa serve` (in-process: Telegram by long polling, Redis storage, the pacer at --limit
messages a second) with N applicants stored (default 100,000; every tenth aged 31 to 35, the
others younger or older, each with their own date of birth, park and plan, a third in
Chinese). A first content version is published (the baseline: nobody is told), then a second
one in which the age above which extra proof is needed goes from 35 to 30: the applicants aged
31 to 35 (10%) get the achievements-proof item on their checklist, the others are unaffected.
The change job runs as `kvisa content publish` runs it, in a process of its own
(bot/publishing/job.py: every applicant re-checked under both versions, a notice queued for
each one affected; the server's own look for a job left undone is stopped so that it does not
take the job first), and the server's broadcast runner delivers the notices through the real
Telegram channel to the fake Bot API of tests/, which refuses more than --limit sending calls a
second (429).

Prints: applicants re-evaluated a second (target >= 2,000/s); notices delivered a second
(accepted by the fake, first to last) against the limit (target >= 97%); duplicates and losses
from the fake's chats (target 0 and 0), and that exactly the affected applicants were told.

Run: .venv/bin/python bench/recheck.py [--applicants 100000] [--limit 30]
     [--redis-url redis://127.0.0.1:6379/11]   (the database is flushed before and after)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import multiprocessing
import random
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
import redis

from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.clock import FixedClock
from kvisa.bot.content.versions import pack
from kvisa.bot.i18n import Catalogs
from kvisa.bot.paths import flows_dir
from kvisa.bot.publishing.job import run_pending
from kvisa.bot.reminders.service import RULES_KEY
from kvisa.bot.server import Server
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.bot.settings import Settings
from kvisa.storage.base import Storage
from kvisa.storage.redis import RedisStorage
from tests.channels.telegram.fake_api import SENDING, TOKEN, FakeBotApi
from tests.support import free_port

NOW = dt.datetime(2026, 12, 2, 4, tzinfo=dt.UTC)  # noon in Shanghai
FIRST_CHAT = 8_000_000_000
MARK = "version 2"  # in every notice, both languages
TARGET_RATE, TARGET_RATIO = 2000.0, 0.97


def applicant(lang: str, birth: str) -> dict[str, Any]:
    return Session(
        lang=lang,  # type: ignore[arg-type]
        consent_at="2026-11-01T00:00:00+00:00",
        finished=True,
        awaiting=Waiting(Kind.MENU),
        answers={
            "degree": "master",
            "degree_field_stem": True,
            "degree_from_recognized": True,
            "stem_work_at_recognized": False,
            "birth_date": birth,
            "residence_country": "DE",
            "passport_expiry": "2031-01-01",
            "planned_application": "2026-12-01",
            "plan": "employed",
            "park": "lingang",
        },
        events={"entered": "2026-11-20"},
        last_seen="2026-12-02T03:00:00+00:00",
    ).to_json()


def affected(n: int) -> bool:
    return n % 10 == 0


def birth_date(rng: random.Random, n: int) -> str:
    """Aged 31 to 35 on the planned application day (2026-12-01) for the affected tenth, else
    20 to 30 or 36 to 45: every applicant's own date, so that no two evaluations are alike."""
    age = rng.randint(31, 35) if affected(n) else rng.choice([*range(20, 31), *range(36, 46)])
    born = dt.date(2026 - age, 12, 1) - dt.timedelta(days=rng.randint(0, 364))
    return born.isoformat()


def put_applicants(redis_url: str, count: int, seed: int = 7) -> None:
    """Straight into Redis in pipelines, as the storage writes them (version 1); parks and plans
    vary, a third in Chinese."""
    rng = random.Random(seed)
    with redis.Redis.from_url(redis_url) as client:
        for start in range(0, count, 5000):
            with client.pipeline(transaction=False) as pipe:
                for n in range(start, min(start + 5000, count)):
                    state = applicant("zh" if n % 3 == 0 else "en", birth_date(rng, n))
                    state["answers"]["park"] = rng.choice(["lingang", "zhangjiang", "other"])
                    state["answers"]["plan"] = rng.choice(["employed", "startup", "research"])
                    data = orjson.dumps(state)
                    pipe.hset(
                        f"kvisa:user:telegram:{FIRST_CHAT + n}", mapping={"v": 1, "data": data}
                    )
                pipe.execute()


async def publish(storage: Storage, directory: Path, catalogs: Catalogs) -> None:
    packed, _ = pack(directory, catalogs)
    await storage.publish_content(
        packed.to_bytes(), author="bench", note="", sha256=packed.sha256, published_at=time.time()
    )


def recheck(redis_url: str) -> tuple[float, str]:
    """The change job in this process, as the publishing command runs it: (seconds, notices)."""

    async def job() -> tuple[float, str]:
        async with RedisStorage.from_url(redis_url) as storage:
            began = time.perf_counter()
            broadcast = await run_pending(storage, Catalogs(), NOW)
            assert broadcast is not None
            return time.perf_counter() - began, broadcast.id

    return asyncio.run(job())


async def wait_done(store: BroadcastStore, broadcast_id: str, timeout: float) -> Broadcast:
    async with asyncio.timeout(timeout):
        while True:
            current = await store.get(broadcast_id)
            if current is not None and current.status in ("done", "cancelled"):
                return current
            await asyncio.sleep(0.25)


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    fake = FakeBotApi(limit=args.limit)
    accepted: list[float] = []
    fake.on_send.append(
        lambda sent: accepted.append(loop.time()) if MARK in (sent.text or "") else None
    )
    await fake.start()
    flows = data_dir / "flows"
    shutil.copytree(flows_dir(), flows)
    catalogs = Catalogs()
    server = Server(
        Settings.from_env(
            {
                "KVISA_DATA_DIR": str(data_dir),
                "REDIS_URL": args.redis_url,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(free_port()),
                "KVISA_RATE_TELEGRAM": str(args.limit),
            }
        ),
        clock=FixedClock(NOW),
    )
    try:
        await server.start()
        assert server.storage is not None
        storage = server.storage
        # The reminders' first start plans everyone's reminders: let it do so on an empty store,
        # as a server that has been running would have.
        async with asyncio.timeout(120):
            while await storage.get_value(RULES_KEY) is None:
                await asyncio.sleep(0.05)
        began = loop.time()
        # In a thread: the server's loop keeps answering meanwhile.
        await asyncio.to_thread(put_applicants, args.redis_url, args.applicants)
        stored = loop.time() - began
        gc.collect()
        gc.freeze()  # as `kvisa serve` does after start-up

        if server.change_jobs is not None:  # the job is the publishing process's (see above)
            await server.change_jobs.stop()
        await publish(storage, flows, catalogs)  # the baseline
        assert await run_pending(storage, catalogs, NOW) is None
        policy = flows / "policy.yaml"
        text = policy.read_text(encoding="utf-8")
        policy.write_text(re.sub(r"(?m)^  proof_above: 35$", "  proof_above: 30", text))
        await publish(storage, flows, catalogs)

        # The job runs where `kvisa content publish` runs it: a process of its own.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            checked, broadcast_id = await loop.run_in_executor(pool, recheck, args.redis_url)
        broadcast = await BroadcastStore(storage).get(broadcast_id)
        assert broadcast is not None
        rate = args.applicants / checked
        print(
            f"{args.applicants} applicants stored in {stored:.1f} s; re-checked under both "
            f"versions in {checked:.1f} s: {rate:,.0f} applicants/s "
            f"(target {TARGET_RATE:,.0f}); {broadcast.total} affected, notices queued as "
            f"{broadcast.id}",
            flush=True,
        )
        if server.broadcasts is not None:
            server.broadcasts.wake()
        created = loop.time()
        done = await wait_done(
            BroadcastStore(storage), broadcast.id, broadcast.total / args.limit * 3 + 120
        )
        finished = loop.time()
    finally:
        await server.stop()
        await fake.stop()
        gc.unfreeze()

    span = accepted[-1] - accepted[0]
    delivered = (len(accepted) - 1) / span
    print(
        f"delivery: {len(accepted)} notices in {span:.1f} s (first "
        f"{accepted[0] - created:.2f} s after queueing, done {finished - created:.1f} s after): "
        f"{delivered:.2f} notices/s, {delivered / args.limit:.1%} of the fake's limit "
        f"{args.limit:g}"
    )
    refused = [c for c in fake.calls if c.method in SENDING and c.status == 429]
    print(f"429s from the fake: {len(refused)}; stored counts {done.counts}")
    per_chat = {
        chat: sum(1 for m in fake.messages.get(chat, []) if MARK in (m.text or ""))
        for chat in range(FIRST_CHAT, FIRST_CHAT + args.applicants)
    }
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    lost = sum(1 for chat, n in per_chat.items() if n == 0 and affected(chat - FIRST_CHAT))
    wrong = sum(1 for chat, n in per_chat.items() if n and not affected(chat - FIRST_CHAT))
    print(f"duplicates {duplicates}, lost {lost}, told though unaffected {wrong}")
    met = {
        "re-check rate": rate >= TARGET_RATE,
        "delivery": delivered / args.limit >= TARGET_RATIO,
        "duplicates": duplicates == 0,
        "lost": lost == 0 and wrong == 0,
    }
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in met.items()))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--applicants", type=int, default=100_000)
    parser.add_argument(
        "--limit", type=float, default=30.0, help="messages a second, the fake's and the bot's"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    if args.applicants < 10:
        parser.error("--applicants: at least 10")
    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            asyncio.run(run(args, Path(data_dir)))
    finally:
        client.flushdb()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
