"""Broadcast benchmark (issue 7) on a real Redis.

`kvisa serve` (in-process: Telegram by long polling, Redis storage, the pacer at --limit
messages a second) with N applicants stored (default 10,000) queues a broadcast to all of them
the way the CLI does (Composer.create, empty segment); the leader's BroadcastRunner delivers it
through the real Telegram channel (aiogram) to the fake Bot API of tests/, which here
- refuses more than --limit sending calls a second (its global token bucket: 429 retry_after 1),
- and answers 429 retry_after 1 to the first attempt of a random --flood-rate of the recipients'
  chats (chosen with a seeded RNG beforehand and set with FakeBotApi.flood: the "random 429s";
  its retry, after retry_after, goes through).
Meanwhile --chatters of the recipients (chosen at random among those the fake treats normally)
chat by long polling: /help, /faq and /timeline in turn, one every 0.2-0.5 s, each waiting for
its answer; they do the same for a while before the broadcast is created (the idle figures).

Prints: broadcast messages a second (accepted by the fake, first to last) and all messages a
second (with the applicants' replies), against the limit; 429s (fake side: the limit's and the
chats'; bot side: Broadcast.throttled; pauses of the whole broadcast after 429s from several
chats); duplicates and losses, from the fake's chats and cross-checked with the stored counts;
the applicants' reply latency, from the update being queued at the fake to the turn's first
and last reply accepted by the fake, idle (before the broadcast) and during it.
Targets (issue 7): >= 97% of the limit, no duplicate, no loss, applicant p99 < 200 ms.

The fake, the bot and the applicants share one event loop (as in bench/reminders.py), and the
bot's objects are frozen out of the garbage collector after start-up, as `kvisa serve` does.

Run: .venv/bin/python bench/broadcast.py [--recipients 10000] [--limit 30] [--flood-rate 0.01]
     [--blocked-rate 0] [--chatters 1] [--seed 7] [--redis-url redis://127.0.0.1:6379/14] [--debug]
     (the database is flushed before and after the run: give it one of its own)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import itertools
import logging
import random
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from bench.common import percentile
from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import Broadcast, BroadcastStore
from kvisa.bot.channels.telegram import TelegramChannel
from kvisa.bot.clock import FixedClock
from kvisa.bot.reminders.service import RULES_KEY
from kvisa.bot.server import Server
from kvisa.bot.session import Kind, Session, Waiting
from kvisa.bot.settings import Settings
from kvisa.identity import UserKey
from kvisa.storage.base import Storage
from tests.channels.telegram.fake_api import SENDING, TOKEN, FakeBotApi, Sent
from tests.support import free_port

NOW = dt.datetime(2026, 11, 25, 4, tzinfo=dt.UTC)  # noon in Shanghai
FIRST_CHAT = 8_000_000_000
TEXTS = ("/help", "/faq", "/timeline")
EN = "Lingang now accepts online applications for the K visa."  # in every broadcast message
ZH = "临港现已接受K字签证的网上申请。"
TARGET_RATIO, TARGET_P99 = 0.97, 0.200


def applicant(lang: str) -> dict[str, Any]:
    return Session(
        lang=lang,
        consent_at="2026-11-01T00:00:00+00:00",
        finished=True,  # type: ignore[arg-type]
        awaiting=Waiting(Kind.MENU),
        answers={"park": "lingang", "plan": "employed"},
        events={"entered": "2026-11-20"},
        last_seen="2026-11-25T03:00:00+00:00",
    ).to_json()


async def put_applicants(storage: Storage, chats: range) -> None:
    """A third in Chinese; 100 writes in flight at a time."""
    states = {"en": applicant("en"), "zh": applicant("zh")}
    for start in range(0, len(chats), 100):
        await asyncio.gather(
            *(
                storage.put(
                    UserKey("telegram", str(chat)),
                    states["zh" if n % 3 == 0 else "en"],
                    expected_version=0,
                )
                for n, chat in enumerate(chats[start : start + 100], start)
            )
        )


def ms(values: list[float]) -> str:
    if not values:
        return "no turns"
    return (
        f"p50 {statistics.median(values) * 1000:.1f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms"
    )


class Holds(logging.Handler):
    """Counts the runner's pauses of the whole broadcast (429s from several chats in a second)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "flood control from" in str(record.msg):
            self.count += 1


@dataclass
class Turn:
    text: str
    first: float  # seconds from the update being queued to the first reply accepted
    last: float  # ... to the turn's last reply


@dataclass
class Watch:
    """When (loop time) the fake accepted each broadcast message, and each reply in each chat."""

    broadcast: list[float] = field(default_factory=list)
    replies: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def __call__(self, sent: Sent) -> None:
        now = asyncio.get_running_loop().time()
        if is_broadcast(sent):
            self.broadcast.append(now)
        else:
            self.replies[sent.chat_id].append(now)


def is_broadcast(sent: Sent) -> bool:
    return EN in (sent.text or "")


async def turn(
    fake: FakeBotApi, channel: TelegramChannel, watch: Watch, chat: int, text: str
) -> Turn:
    """One message of an applicant, through getUpdates, until every reply went out."""
    loop = asyncio.get_running_loop()
    before = len(watch.replies[chat])
    began = loop.time()
    await fake.confirmed(fake.push(fake.message_update(chat, text)), timeout=30)
    await channel.idle()
    replies = watch.replies[chat][before:]
    if not replies:
        raise RuntimeError(f"no reply to {text}")
    return Turn(text, replies[0] - began, replies[-1] - began)


async def chatter(
    fake: FakeBotApi,
    channel: TelegramChannel,
    watch: Watch,
    chat: int,
    rng: random.Random,
    stop: asyncio.Event,
    turns: list[Turn],
    count: int | None = None,
) -> None:
    """Turns until `stop` is set (or `count` of them), 0.2-0.5 s apart."""
    for n, text in enumerate(itertools.cycle(TEXTS)):
        if stop.is_set() or n == count:
            return
        turns.append(await turn(fake, channel, watch, chat, text))
        try:
            async with asyncio.timeout(rng.uniform(0.2, 0.5)):
                await stop.wait()
        except TimeoutError:
            pass


async def wait_done(store: BroadcastStore, broadcast_id: str, deadline: float) -> Broadcast:
    loop = asyncio.get_running_loop()
    while True:
        current = await store.get(broadcast_id)
        if current is not None and current.status in ("done", "cancelled"):
            return current
        if loop.time() > deadline:
            raise TimeoutError(f"the broadcast did not finish: {current}")
        await asyncio.sleep(0.25)


async def run(args: argparse.Namespace, data_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(args.seed)
    recipients = range(FIRST_CHAT, FIRST_CHAT + args.recipients)
    flooded = set(rng.sample(recipients, round(args.recipients * args.flood_rate)))
    blocked = set(rng.sample(recipients, round(args.recipients * args.blocked_rate)))
    chatters = rng.sample(sorted(set(recipients) - flooded - blocked), args.chatters)
    holds = Holds()
    runner_log = logging.getLogger("kvisa.bot.broadcasts.runner")
    runner_log.setLevel(logging.INFO)
    runner_log.addHandler(holds)

    fake = FakeBotApi(limit=args.limit)
    watch = Watch()
    fake.on_send.append(watch)
    await fake.start()
    server = Server(
        Settings.from_env(
            {
                "KVISA_DATA_DIR": str(data_dir),
                "REDIS_URL": args.redis_url,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE": fake.base_url,
                "KVISA_HTTP_PORT": str(free_port()),
                "KVISA_RATE_TELEGRAM": str(args.limit),
                "KVISA_AGENCY_NAME": "Shanghai K Agency",
                "KVISA_AGENCY_NAME_ZH": "上海K签代理",
            }
        ),
        clock=FixedClock(NOW),
    )
    try:
        await server.start()
        assert server.storage is not None and server.composer is not None
        channel = server.channels[0]
        assert isinstance(channel, TelegramChannel)
        storage, store = server.storage, BroadcastStore(server.storage)
        # The reminders' first start plans everyone's reminders: let it do so on an empty store,
        # as a server that has been running would have.
        async with asyncio.timeout(30):
            while await storage.get_value(RULES_KEY) is None:
                await asyncio.sleep(0.05)
        gc.collect()
        gc.freeze()  # as `kvisa serve` does after start-up

        began = loop.time()
        await put_applicants(storage, recipients)
        stored = loop.time() - began
        for chat in flooded:
            fake.flood(chat, refusals=1, retry_after=1)
        for chat in blocked:
            fake.block(chat)
        idle: list[Turn] = []
        stop = asyncio.Event()
        await asyncio.gather(
            *(
                chatter(
                    fake,
                    channel,
                    watch,
                    chat,
                    random.Random(args.seed + chat),
                    stop,
                    idle,
                    count=len(TEXTS) * 7,
                )
                for chat in chatters
            )
        )
        began = loop.time()
        broadcast = await server.composer.create(EN, ZH, Segment(), author="cli")
        created = loop.time()
        assert broadcast.total == args.recipients, broadcast.total
        print(
            f"{args.recipients} applicants stored in {stored:.1f} s; broadcast {broadcast.id} to "
            f"{broadcast.total} created in {created - began:.1f} s; "
            f"{len(flooded)} chats answer 429 once, "
            f"{len(blocked)} blocked the bot; {args.chatters} of them chatting meanwhile"
        )

        during: list[Turn] = []
        talking = [
            asyncio.create_task(
                chatter(fake, channel, watch, chat, random.Random(args.seed + chat), stop, during)
            )
            for chat in chatters
        ]
        try:
            done = await wait_done(
                store, broadcast.id, created + args.recipients / args.limit * 3 + 60
            )
        finally:
            stop.set()
            await asyncio.gather(*talking)
        finished = loop.time()
    finally:
        await server.stop()
        await fake.stop()
        gc.unfreeze()

    # Throughput: what the fake accepted, first broadcast message to last.
    times = watch.broadcast
    first, last = times[0], times[-1]
    span = last - first
    rate = (len(times) - 1) / span
    replies = sum(
        1 for chat_times in watch.replies.values() for t in chat_times if first <= t <= last
    )
    total_rate = (len(times) + replies - 1) / span
    print(
        f"delivery: {len(times)} broadcast messages in {span:.1f} s "
        f"(first {first - created:.2f} s after creation, done {finished - created:.1f} s after): "
        f"{rate:.2f} messages/s ({rate / args.limit:.1%} of "
        f"{args.limit:g}); with the {replies} replies to applicants {total_rate:.2f} messages/s "
        f"({total_rate / args.limit:.1%})"
    )

    # 429s, both sides.
    refused = [c for c in fake.calls if c.method in SENDING and c.status == 429]
    in_chats = sum(1 for c in refused if c.chat_id in chatters)
    print(
        f"429s: fake answered {len(refused)} ({fake.refused_by_limit} over the limit, "
        f"{len(refused) - fake.refused_by_limit} per chat; "
        f"{in_chats} in the chatting applicants' chats), "
        f"early retries {fake.early_retries}; bot counted {done.throttled} (Broadcast.throttled), "
        f"paused the whole broadcast {holds.count} times"
    )

    # Each recipient once, except those who blocked the bot.
    per_chat = {
        chat: sum(1 for m in fake.messages.get(chat, []) if is_broadcast(m)) for chat in recipients
    }
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    losses = sum(1 for chat, n in per_chat.items() if n == 0 and chat not in blocked)
    expected = {"sent": args.recipients - len(blocked)} | (
        {"blocked": len(blocked)} if blocked else {}
    )
    print(
        f"duplicates {duplicates}, losses {losses}; "
        f"stored: status {done.status}, counts {done.counts} "
        f"({'as' if done.counts == expected else 'NOT as'} the fake's chats say: {expected})"
    )

    # The applicants' replies.
    lasts = [t.last for t in during]
    print(f"applicant replies, idle ({len(idle)} turns): whole turn {ms([t.last for t in idle])}")
    print(
        f"applicant replies during the broadcast ({len(during)} turns): "
        f"first reply {ms([t.first for t in during])}; whole turn {ms(lasts)}"
    )
    for text in TEXTS:
        print(f"  {text}: whole turn {ms([t.last for t in during if t.text == text])}")
    if args.debug:
        print("slowest turns (ms):", sorted((round(t.last * 1000), t.text) for t in during)[-8:])

    met = {
        "rate": total_rate / args.limit >= TARGET_RATIO,
        "duplicates": duplicates == 0,
        "losses": losses == 0,
        "p99": percentile(lasts, 0.99) < TARGET_P99 if lasts else None,
    }
    print(
        "targets: "
        + ", ".join(
            f"{name} {'n/a' if ok is None else 'met' if ok else 'NOT met'}"
            for name, ok in met.items()
        )
        + f" (rate: all messages >= {TARGET_RATIO:.0%} of the limit; "
        + f"broadcast alone {rate / args.limit:.1%})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument(
        "--limit", type=float, default=30.0, help="messages a second, the fake's and the bot's"
    )
    parser.add_argument(
        "--flood-rate", type=float, default=0.01, help="share of chats answering 429 once"
    )
    parser.add_argument(
        "--blocked-rate", type=float, default=0.0, help="share of chats that blocked the bot"
    )
    parser.add_argument(
        "--chatters", type=int, default=1, help="recipients chatting during the broadcast (0: none)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--debug", action="store_true", help="also print the slowest turns")
    args = parser.parse_args()
    if args.chatters < 0:
        parser.error("--chatters cannot be negative")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].setLevel(
        logging.WARNING
    )  # the runner's INFO is counted, not shown
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
