"""Workspace benchmark (issue 19) on a real Redis: 100,000 applicants, the pages staff open.

Stores N applicants (default 100,000: both platforms, both languages, every park and plan,
finished interviews, steps reported on dates spread over a year so deadlines fall before,
within and after the next 14 days) and indexes them as the engine's watcher does
(`Applicants.entry`, written in pages), then serves the workspace over HTTP on loopback
(aiohttp, the same middleware as `kvisa serve`: session, roles, headers, the audit entry every
page writes) and times, from a signed-in client in the same process, --requests requests each
of: the cases list (first page), a filtered list (park, step reached, verdict: an
intersection of three facets), the deadlines page (overdue and the next 14 days), and a case
page (the record, the verdict, the timeline; without the picture, which is its own request).

Prints p50 and p95 in milliseconds per page, and how long storing and indexing took.
Target (issue 19): p95 under 300 ms for each page at 100,000 applicants.

Run: .venv/bin/python bench/workspace.py [--applicants 100000] [--requests 200]
     [--redis-url redis://127.0.0.1:6379/15]   (keys under a prefix of their own, removed after)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.common import percentile  # noqa: E402
from kvisa.bot.cases.applicants import CASES, Filters  # noqa: E402
from kvisa.bot.clock import FixedClock  # noqa: E402
from kvisa.bot.content import load_content  # noqa: E402
from kvisa.bot.engine.engine import Engine  # noqa: E402
from kvisa.bot.settings import Settings  # noqa: E402
from kvisa.bot.workspace import open_workspace  # noqa: E402
from kvisa.bot.workspace.accounts import StaffStore  # noqa: E402
from kvisa.identity import UserKey  # noqa: E402
from kvisa.storage.redis import RedisStorage  # noqa: E402

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # noon in Shanghai
PASSWORD = "benchmark password"
PARKS, PLANS = ("lingang", "zhangjiang", "other"), ("employed", "startup", "research")
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def applicant(n: int, rng: random.Random) -> tuple[UserKey, dict[str, Any]]:
    channel = "telegram" if n % 3 else "wechat"
    user = UserKey(channel, str(10_000_000 + n) if channel == "telegram" else f"oBench{n:08d}")
    entered = dt.date(2026, 11, 25) - dt.timedelta(days=rng.randint(-20, 340))
    events: dict[str, str] = {}
    step = rng.random()
    if step > 0.2:
        events["visa_applied"] = (entered - dt.timedelta(days=20)).isoformat()
    if step > 0.4 and entered <= dt.date(2026, 11, 25):
        events["entered"] = entered.isoformat()
    if step > 0.8 and "entered" in events:
        events["work_permit_submitted"] = (entered + dt.timedelta(days=10)).isoformat()
    data = {
        "lang": "zh" if n % 4 == 0 else "en",
        "consent_at": "2026-06-01T00:00:00+00:00",
        "finished": True,
        "answers": {
            "degree": rng.choice(["master", "doctorate", "bachelor"]),
            "degree_field_stem": True,
            "degree_from_recognized": rng.choice([True, True, False]),
            "stem_work_at_recognized": rng.choice([True, False]),
            "birth_date": f"{rng.randint(1990, 2002)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "residence_country": rng.choice(["DE", "FR", "US", "BR", "IN"]),
            "passport_expiry": "2031-01-01",
            "planned_application": "2026-06-15",
            "plan": rng.choice(PLANS),
            "park": rng.choice(PARKS),
        },
        "events": events,
        "last_seen": "2026-11-20T03:00:00+00:00",
        "ticked": [],
    }
    return user, data


async def fill(storage: RedisStorage, ws: Any, count: int) -> tuple[float, float]:
    rng = random.Random(19)
    started = time.perf_counter()
    people = [applicant(n, rng) for n in range(count)]
    for i in range(0, count, 500):
        await asyncio.gather(
            *(storage.put(u, d, expected_version=0) for u, d in people[i : i + 500])
        )
    stored = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, count, 500):
        entries = [await ws.applicants.entry(u, d) for u, d in people[i : i + 500]]
        await ws.applicants.catalog.put(CASES, [e for e in entries if e is not None])
    return stored, time.perf_counter() - started


async def timed(http: aiohttp.ClientSession, url: str, requests: int) -> list[float]:
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applicants", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    prefix = f"kvisa-bench-ws-{uuid.uuid4().hex[:8]}"
    storage = RedisStorage.from_url(args.redis_url, prefix=prefix)
    settings = Settings.from_env({"REDIS_URL": args.redis_url})
    flows, catalogs = load_content(settings)
    engine = Engine(flows, catalogs, storage)
    ws = await open_workspace(settings, engine, FixedClock(NOW), {})
    runner: web.AppRunner | None = None
    try:
        stored, indexed = await fill(storage, ws, args.applicants)
        print(f"stored {args.applicants} applicants in {stored:.1f} s, indexed in {indexed:.1f} s")
        await StaffStore(storage).add("bench", "viewer", PASSWORD, NOW)
        app = web.Application()
        ws.mount(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/agency"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/") as response:
                token = CSRF.search(await response.text())
            assert token is not None
            data = {"csrf": token.group(1), "name": "bench", "password": PASSWORD}
            async with http.post(base + "/signin", data=data) as response:
                assert "signout" in await response.text()
            some = await ws.applicants.page(Filters(), 0, 1)
            ref = some.docs[0][0]
            pages = {
                "cases list": base + "/cases",
                "filtered list": base + "/cases?park=lingang&reached=entered&verdict=eligible",
                "deadlines": base + "/deadlines",
                "case page": f"{base}/cases/{ref}",
            }
            for name, url in pages.items():
                await timed(http, url, 5)  # warm up
                spent = await timed(http, url, args.requests)
                print(
                    f"{name:14} p50 {percentile(spent, 0.5):6.1f} ms   "
                    f"p95 {percentile(spent, 0.95):6.1f} ms   ({args.requests} requests)"
                )
            filtered = await ws.applicants.catalog.query(
                CASES, [["park:lingang"], ["reached:entered"], ["verdict:eligible"]], limit=1
            )
            due = await ws.applicants.due(dt.date(2026, 12, 9), 0, 1)
            print(f"(the filtered list selects {filtered.total}, the deadlines page {due.total})")
    finally:
        if runner is not None:
            await runner.cleanup()
        await ws.stop()
        async for key in storage.client.scan_iter(match=f"{prefix}:*", count=1000):
            await storage.client.delete(key)
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main())
