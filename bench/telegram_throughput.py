"""Telegram throughput and latency: `kvisa serve` against the fake Bot API, next to a bare
aiogram echo bot on the same fake.

The bot under test runs in its own process (as in production); this process runs the fake
Bot API and the simulated users. Two figures for each bot:
- saturation: N users go through the interview at once, each answering as soon as the bot
  has asked (closed loop): updates per second, and latency from update to reply (the echo
  bot is sent as many messages a user as the interview takes);
- fixed rate: updates pushed at a steady rate (open loop): p50 and p99 latency.
Each phase also gives the bot process's CPU time per update (Linux, from /proc): steadier than
updates per second while other programs load the machine.
"Reply" is the message that completes the turn: for the interview the next question (the
message with buttons), for the echo bot its echo. Storage is Redis.

Run: .venv/bin/python bench/telegram_throughput.py [--users 50] [--rate 100] [--seconds 10]
     [--rounds 3] [--gc-freeze] [--linked]
With --linked every user's Telegram identity is linked beforehand to an applicant founded on
WeChat (bench/common.py), so each turn follows a forward to the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from bench.common import link_identities, percentile
from tests.channels.telegram.fake_api import FakeBotApi, Sent
from tests.support import ACADEMIC, content, free_port

TOKEN = "777000:BENCH-token"  # its own bot id, so its update claims are its own
FIRST_CHAT = 7_000_000_000
FLOWS, CATALOGS = content()
QUESTIONS = [(CATALOGS["en"](q.text), q.id) for q in FLOWS.questions]
# What the echo bot is sent: as many messages as the interview takes.
ECHO_TEXTS = [
    "/start",
    "I agree",
    "Master's",
    "yes",
    "yes",
    "no",
    "1998-04-27",
    "DE",
    "Germany",
    "2031-01-01",
    "today",
    "research",
    "Lingang",
]


def interview_step(prompt: Sent | None) -> tuple[str, str] | None:
    """The answer of tests.support.ACADEMIC to what the bot asked: ("press", option id) or
    ("text", what is typed); None once the menu after the verdict is shown."""
    if prompt is None:
        return "text", "/start"
    if "agree" in prompt.option_ids:
        return "press", "agree"
    if "timeline" in prompt.option_ids:
        return None
    question = next((qid for text, qid in QUESTIONS if text in (prompt.text or "")), None)
    if question is None:
        raise RuntimeError(f"unexpected prompt: {prompt.text!r}")
    value = ACADEMIC[question]
    return ("press", value) if value in prompt.option_ids else ("text", value)


# `kvisa serve` after moving everything the imports created out of the collector's sight: a
# full collection otherwise walks aiogram's ~900 pydantic models and takes ~160 ms here.
GC_FROZEN_SERVE = """
import gc, sys
import kvisa.bot.cli, kvisa.bot.server, kvisa.bot.channels.telegram
gc.collect()
gc.freeze()
sys.exit(kvisa.bot.cli.main(["serve"]))
"""


def start_bot(kind: str, args: argparse.Namespace, api_base: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": api_base,
        "REDIS_URL": args.redis,
        "KVISA_DATA_DIR": args.data_dir,
        "KVISA_HTTP_PORT": str(free_port()),
        "KVISA_LOG_LEVEL": "ERROR",
    }
    if kind == "echo":
        command = [sys.executable, __file__, "--echo-bot"] + (
            ["--gc-freeze"] if args.gc_freeze else []
        )
    elif args.gc_freeze:
        command = [sys.executable, "-c", GC_FROZEN_SERVE]
    else:
        command = [sys.executable, "-m", "kvisa.bot.cli", "serve"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def echo_bot(gc_freeze: bool) -> None:
    """The baseline: aiogram's Dispatcher with one handler that echoes the text."""
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    if gc_freeze:
        gc.collect()
        gc.freeze()

    bot = Bot(
        TOKEN,
        session=AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_BASE"])),
    )
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(
        signal.SIGTERM, lambda: asyncio.ensure_future(dispatcher.stop_polling())
    )
    await dispatcher.start_polling(bot, handle_signals=False, polling_timeout=30)


# --- the users --------------------------------------------------------------------------------


@dataclass
class Driver:
    fake: FakeBotApi
    kind: str  # "kvisa" or "echo"
    latencies: list[float] = field(default_factory=list)
    waiting: dict[int, asyncio.Future[Sent]] = field(default_factory=dict)
    chats: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_CHAT))

    def __post_init__(self) -> None:
        self.fake.on_send.append(self.sent)

    def sent(self, message: Sent) -> None:
        completes_turn = self.kind == "echo" or message.reply_markup is not None
        future = self.waiting.get(message.chat_id)
        if completes_turn and future is not None and not future.done():
            del self.waiting[message.chat_id]
            future.set_result(message)

    def step(self, prompt: Sent | None, done: int) -> tuple[str, str] | None:
        if self.kind == "echo":
            return ("text", ECHO_TEXTS[done]) if done < len(ECHO_TEXTS) else None
        return interview_step(prompt)

    def update(self, chat_id: int, step: tuple[str, str], prompt: Sent | None) -> dict[str, Any]:
        action, value = step
        if action == "text":
            return self.fake.message_update(chat_id, value)
        assert prompt is not None
        data = next(d for _, d in prompt.buttons if d.partition(":")[2] == value)
        return self.fake.callback_update(prompt, data)

    async def turn(self, chat_id: int, step: tuple[str, str], prompt: Sent | None) -> Sent:
        future: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = future
        start = time.perf_counter()
        self.fake.push(self.update(chat_id, step, prompt))
        reply = await asyncio.wait_for(future, 30)
        self.latencies.append(time.perf_counter() - start)
        return reply

    async def user(self) -> None:
        """One new user through the whole interview, answering as soon as asked."""
        chat_id, prompt, done = next(self.chats), None, 0
        while (step := self.step(prompt, done)) is not None:
            prompt, done = await self.turn(chat_id, step, prompt), done + 1

    async def saturate(self, users: int) -> tuple[float, list[float]]:
        self.latencies = []
        start = time.perf_counter()
        await asyncio.gather(*(self.user() for _ in range(users)))
        return len(self.latencies) / (time.perf_counter() - start), self.latencies

    async def steady(self, rate: float, seconds: float) -> tuple[float, list[float]]:
        """Updates at a fixed rate; each from a user whose previous turn is over (new users
        join when all are busy), so the bot is never asked faster than `rate`."""
        self.latencies = []
        ready: asyncio.Queue[tuple[int, tuple[str, str], Sent | None, int]] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def one(chat_id: int, step: tuple[str, str], prompt: Sent | None, done: int) -> None:
            reply = await self.turn(chat_id, step, prompt)
            if (following := self.step(reply, done + 1)) is not None:
                ready.put_nowait((chat_id, following, reply, done + 1))

        loop = asyncio.get_running_loop()
        start, total = loop.time(), int(rate * seconds)
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            if ready.empty():
                ready.put_nowait(
                    (next(self.chats), self.step(None, 0) or ("text", "/start"), None, 0)
                )
            task = asyncio.create_task(one(*ready.get_nowait()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        return total / (loop.time() - start), self.latencies


def report(label: str, rate: float, latencies: list[float], cpu: float) -> None:
    print(
        f"  {label:<28} {rate:8.1f} updates/s   p50 {percentile(latencies, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms   CPU {cpu * 1e6:5.0f} us/update   "
        f"({len(latencies)} updates)"
    )


def clean_redis(redis_url: str, chats: int) -> None:
    """Remove what the run left: its users' records, update claims and reminder entries."""
    users = [f"telegram:{FIRST_CHAT + n}" for n in range(chats)]
    with redis.Redis.from_url(redis_url) as client:
        stale = list(
            client.scan_iter(match=f"kvisa:claim:telegram:{TOKEN.split(':')[0]}:*", count=1000)
        )
        stale += [f"kvisa:user:{user}" for user in users]
        stale += list(client.scan_iter(match="kvisa:user:wechat:o_link_*", count=1000))
        for start in range(0, len(stale), 1000):
            client.delete(*stale[start : start + 1000])
        for start in range(0, len(users), 1000):
            batch = users[start : start + 1000]
            client.hdel("kvisa:reminders:pending", *batch)
            jobs = [f"reminders:{user}" for user in batch]
            client.hdel("kvisa:reminders:jobs", *jobs)
            client.zrem("kvisa:reminders:run_times", *jobs)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; NaN where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Figures = dict[str, tuple[float, list[float], float]]  # phase: rate, latencies, CPU s a update


async def bench(kind: str, args: argparse.Namespace) -> Figures:
    fake = await FakeBotApi(token=TOKEN).start()
    if kind == "kvisa" and args.linked:
        budget = 10 + args.users + int(args.rate * args.seconds)
        chats = range(FIRST_CHAT, FIRST_CHAT + budget)
        link_identities(args.redis, [(f"telegram:{c}", f"wechat:o_link_{c}") for c in chats])
    process = start_bot(kind, args, fake.base_url)
    driver = Driver(fake, kind)
    try:
        await fake.wait_for(
            lambda: fake.calls_to("getUpdates"), timeout=60, what=f"{kind} bot polling"
        )
        await driver.saturate(5)  # warm up: connections, caches
        results: Figures = {}
        for phase in ("saturation", "fixed rate"):
            cpu = cpu_seconds(process.pid)
            if phase == "saturation":
                rate, latencies = await driver.saturate(args.users)
            else:
                rate, latencies = await driver.steady(args.rate, args.seconds)
            results[phase] = rate, latencies, (cpu_seconds(process.pid) - cpu) / len(latencies)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
        await fake.stop()
        clean_redis(args.redis, next(driver.chats) - FIRST_CHAT)
    return results


async def main(args: argparse.Namespace) -> None:
    clean_redis(args.redis, 0)
    print(
        f"{args.users} users through the interview for saturation; {args.rate:g} updates/s for "
        f"{args.seconds:g} s at the fixed rate; storage {args.redis}; {os.cpu_count()} CPUs; "
        f"{args.rounds} rounds, the bots taking turns; gc.freeze() in both bots: {args.gc_freeze}"
    )
    labels = {"kvisa": "kvisa serve (interview)", "echo": "aiogram echo bot"}
    ratios, p99s, cpus = [], [], []
    for round_ in range(1, args.rounds + 1):
        figures = {kind: await bench(kind, args) for kind in labels}
        print(f"round {round_}")
        for kind, label in labels.items():
            print(f" {label}")
            for phase, (rate, latencies, cpu) in figures[kind].items():
                report(phase, rate, latencies, cpu)
        ratios.append(figures["kvisa"]["saturation"][0] / figures["echo"]["saturation"][0])
        p99s.append(percentile(figures["kvisa"]["fixed rate"][1], 0.99) * 1000)
        cpus.append(figures["kvisa"]["saturation"][2] * 1e6)
    print(
        f"kvisa / echo updates per second: median {statistics.median(ratios):.2f} "
        f"({', '.join(f'{r:.2f}' for r in ratios)}) (target >= 0.5)"
    )
    print(
        f"kvisa p99 at {args.rate:g} updates/s: median {statistics.median(p99s):.1f} ms "
        f"({', '.join(f'{p:.1f}' for p in p99s)}) (target < 50 ms)"
    )
    print(
        f"kvisa CPU per update at saturation: median {statistics.median(cpus):.0f} us "
        f"({', '.join(f'{c:.0f}' for c in cpus)})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--echo-bot"]:
        asyncio.run(echo_bot(gc_freeze="--gc-freeze" in sys.argv))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--linked", action="store_true", help="users linked to a WeChat applicant")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() in both bots once their code is imported",
    )
    parser.add_argument(
        "--redis", default=os.environ.get("KVISA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    with tempfile.TemporaryDirectory() as data_dir:
        parser.set_defaults(data_dir=data_dir)
        asyncio.run(main(parser.parse_args()))
