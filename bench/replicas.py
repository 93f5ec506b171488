"""One `kvisa serve` replica against two on the same Redis: the full interview load of
bench/telegram_throughput.py, by webhook (two processes cannot both long-poll), updates
spread round robin over the replicas as a proxy would.

For each setup: saturation (N users through the interview at once, closed loop: updates per
second, p50 and p99 from update to the next question) and a fixed rate (p99), the replicas'
CPU per update (from /proc), and the ratio of two replicas to one. Then Redis memory per
applicant: used_memory of the bench's own redis-server (started on a free port, nothing else
in it) before and after the users, divided by the users, and the user record's own size.

Run: .venv/bin/python bench/replicas.py [--users 50] [--rate 100] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from bench.common import percentile
from bench.telegram_throughput import FIRST_CHAT, TOKEN, Driver, cpu_seconds, report
from tests.channels.telegram.fake_api import FakeBotApi, Sent
from tests.ops.nodes import RedisNode
from tests.support import free_port

SECRET = "bench-replicas-secret"
# Update ids for the whole run: a webhook update id is remembered (claimed) for 26 hours.
UPDATE_IDS = itertools.count(1)


class WebhookDriver(Driver):
    """The users of bench/telegram_throughput.py, their updates posted to the replicas'
    webhooks in turn instead of queued for getUpdates."""

    def __init__(self, fake: FakeBotApi, urls: list[str], http: aiohttp.ClientSession) -> None:
        super().__init__(fake, "kvisa")
        self.urls, self.http = urls, http
        self.next_url = itertools.cycle(urls)

    async def turn(self, chat_id: int, step: tuple[str, str], prompt: Sent | None) -> Sent:
        future: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = future
        update = self.update(chat_id, step, prompt)
        update["update_id"] = next(UPDATE_IDS)
        start = time.perf_counter()
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with self.http.post(next(self.next_url), json=update, headers=headers) as answer:
            assert answer.status == 200, answer.status
        reply = await asyncio.wait_for(future, 30)
        self.latencies.append(time.perf_counter() - start)
        return reply


def start_replica(
    fake: FakeBotApi, redis_url: str, data_dir: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": fake.base_url,
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "REDIS_URL": redis_url,
        "KVISA_DATA_DIR": data_dir,
        "KVISA_HTTP_PORT": str(port),
        "KVISA_LOG_LEVEL": os.environ.get("KVISA_LOG_LEVEL", "ERROR"),
    }
    command = [sys.executable, "-m", "kvisa.bot.cli", "serve"]
    process = subprocess.Popen(command, cwd=data_dir, env=env)
    return process, f"http://127.0.0.1:{port}"


async def until_ready(http: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(120):
        while True:
            try:
                async with http.get(base + "/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


Figures = dict[str, tuple[float, list[float], float]]


async def bench(count: int, args: argparse.Namespace, store: RedisNode, chats: Any) -> Figures:
    fake = await FakeBotApi(token=TOKEN).start()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with aiohttp.ClientSession() as http:
            try:
                urls = []
                for _ in range(count):
                    process, base = start_replica(fake, store.url, data_dir)
                    processes.append(process)
                    urls.append(base + "/telegram")
                for url in urls:
                    await until_ready(http, url.removesuffix("/telegram"))
                driver = WebhookDriver(fake, urls, http)
                driver.chats = chats
                await driver.saturate(5)  # warm up: connections, caches
                results: Figures = {}
                for phase in ("saturation", "fixed rate"):
                    cpu = sum(cpu_seconds(p.pid) for p in processes)
                    if phase == "saturation":
                        rate, latencies = await driver.saturate(args.users)
                    else:
                        rate, latencies = await driver.steady(args.rate, args.seconds)
                    used = sum(cpu_seconds(p.pid) for p in processes) - cpu
                    results[phase] = rate, latencies, used / len(latencies)
            finally:
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                for process in processes:
                    await asyncio.to_thread(process.wait, 60)
                await fake.stop()
    return results


def memory_per_applicant(store: RedisNode, before: int, users: int) -> tuple[float, float]:
    with store.client() as client:
        used = int(client.info("memory")["used_memory"]) - before
        sample = [k for k in client.scan_iter(match="kvisa:user:telegram:*", count=1000)][:200]
        record = statistics.mean(int(client.memory_usage(k) or 0) for k in sample)
    return used / users, record


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as redis_dir:
        store = RedisNode(Path(redis_dir)).start()
        try:
            with store.client() as client:
                before = int(client.info("memory")["used_memory"])
            print(
                f"{args.users} users through the interview for saturation; {args.rate:g} "
                f"updates/s for {args.seconds:g} s at the fixed rate; Telegram by webhook, round "
                f"robin; a private redis-server; {os.cpu_count()} CPUs; {args.rounds} rounds"
            )
            chats = itertools.count(FIRST_CHAT)
            ratios, p99s = [], {1: [], 2: []}
            for round_ in range(1, args.rounds + 1):
                figures = {count: await bench(count, args, store, chats) for count in (1, 2)}
                print(f"round {round_}")
                for count, phases in figures.items():
                    print(f" {count} replica{'s' if count > 1 else ''}")
                    for phase, (rate, latencies, cpu) in phases.items():
                        report(phase, rate, latencies, cpu)
                    p99s[count].append(percentile(phases["saturation"][1], 0.99) * 1000)
                ratios.append(figures[2]["saturation"][0] / figures[1]["saturation"][0])
            users = next(chats) - FIRST_CHAT
            per_user, record = memory_per_applicant(store, before, users)
            print(
                f"two replicas / one, updates per second at saturation: median "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
            )
            for count, values in p99s.items():
                print(
                    f"p99 at saturation, {count} replica(s): median "
                    f"{statistics.median(values):.1f} ms ({', '.join(f'{v:.1f}' for v in values)})"
                )
            print(
                f"Redis memory per applicant after the interview: {per_user:.0f} bytes of "
                f"used_memory ({users} applicants, update claims included); the user record "
                f"alone {record:.0f} bytes (MEMORY USAGE)"
            )
        finally:
            store.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
