"""A broadcast through `kvisa serve` and the fake Bot API limited to 30 messages a second: 2,000
applicants, injected 429s and 403s, a restart in the middle, an applicant chatting meanwhile."""

from __future__ import annotations

import asyncio

from kvisa.bot.broadcasts.segment import Segment
from kvisa.bot.broadcasts.store import BroadcastStore
from kvisa.identity import UserKey
from tests.broadcasts.conftest import Serve, broadcasts_to, store_applicants
from tests.channels.telegram.fake_api import SENDING, FakeBotApi

FIRST, COUNT = 10_000, 2_000
RATE = "90"
BLOCKED = range(FIRST + 100, FIRST + 2_000, 100)  # 19 applicants blocked the bot
FLOODED = range(FIRST + 7, FIRST + 2_000, 67)  # 30 chats answer 429 once


def broadcast_calls(fake: FakeBotApi) -> int:
    return sum(
        1
        for c in fake.calls
        if c.method in SENDING and c.status == 200 and (c.chat_id or 0) >= FIRST
    )


async def test_two_thousand_applicants_get_it_once_through_floods_blocks_and_a_restart(
    fake: FakeBotApi, serve: Serve
) -> None:
    # Telegram's limit is 30 a second; 90 here (the bot paced to match) keeps the suite short
    # and changes nothing the test looks at: bench/broadcast.py measures at 30.
    fake.limit = 90.0
    for chat in BLOCKED:
        fake.block(chat)
    for chat in FLOODED:
        fake.flood(chat, refusals=1, retry_after=1)
    tg = await serve(KVISA_RATE_TELEGRAM=RATE)
    assert tg.server.storage is not None and tg.server.composer is not None
    await store_applicants(tg.server.storage, range(FIRST, FIRST + COUNT))
    broadcast = await tg.server.composer.create(
        "Lingang now accepts online applications.",
        "临港现已接受网上申请。",
        Segment(),
        author="cli",
    )
    assert broadcast.total == COUNT

    # An applicant chats while it runs: each reply goes out ahead of the broadcast's queue.
    applicant = tg.user(555)
    await applicant.send("/start")
    await fake.wait_for(
        lambda: broadcast_calls(fake) >= 200, timeout=60, what="200 broadcast messages"
    )
    for text in ("/help", "/faq", "/parks"):
        before = broadcast_calls(fake)
        replies = await applicant.send(text)
        assert replies, text
        assert broadcast_calls(fake) - before <= 3  # at most the sends already on the wire

    # A restart in the middle: what was sent stays sent, the rest resumes.
    await fake.wait_for(
        lambda: broadcast_calls(fake) >= 700, timeout=60, what="700 broadcast messages"
    )
    await tg.server.stop()
    sent_before_restart = broadcast_calls(fake)
    tg = await serve(KVISA_RATE_TELEGRAM=RATE)
    assert tg.server.storage is not None
    store = BroadcastStore(tg.server.storage)

    async def finished() -> bool:
        current = await store.get(broadcast.id)
        return current is not None and current.status == "done"

    async with asyncio.timeout(150):
        while not await finished():
            await asyncio.sleep(0.5)
    done = await store.get(broadcast.id)
    assert done is not None
    assert done.counts == {"sent": COUNT - len(BLOCKED), "blocked": len(BLOCKED)}
    assert done.throttled >= len(FLOODED)
    per_chat = {chat: len(broadcasts_to(fake, chat)) for chat in range(FIRST, FIRST + COUNT)}
    assert {chat for chat, n in per_chat.items() if n == 0} == set(BLOCKED)  # no loss
    assert max(per_chat.values()) == 1  # no duplicate, across the restart too
    assert 0 < sent_before_restart < COUNT
    assert fake.early_retries == 0  # every 429's retry_after was honoured
    for chat in BLOCKED[:3]:
        record = await tg.server.storage.get(UserKey("telegram", str(chat)))
        assert record and record.data["inactive"] is True
    # Each in their language first, the other below, with the agency's name and the opt-out.
    zh_first = broadcasts_to(fake, FIRST)[0]
    assert zh_first.startswith("📢 来自上海K签代理的政策更新") and zh_first.index(
        "临港"
    ) < zh_first.index("Lingang")
    en_first = broadcasts_to(fake, FIRST + 1)[0]
    assert (
        en_first.startswith("📢 Policy update from Shanghai K Agency") and "/news off" in en_first
    )
    assert await store.chunk(broadcast.id, 0) == {}  # who got it is forgotten once it is done
