"""Before consent a record holds only the pending consent prompt, and expires within 24 hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from redis.asyncio import Redis

from kvisa.bot.messages import Inbound
from kvisa.bot.session import PRE_CONSENT
from kvisa.identity import UserKey
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.privacy.conftest import MovableClock
from tests.support import NOON_SHANGHAI, Chat, engine_on

# What 53 WeChat users first sent: following the account, a deep link, a greeting, /lang.
FIRST_MESSAGES = ["/start", "/start lingang", "你好", "/lang zh", "/help", "hello"]
USERS = [UserKey("wechat", f"oUser{n:02d}") for n in range(53)]


async def fifty_three_write_once_and_one_consents(chat_on: SqliteStorage | RedisStorage) -> None:
    engine = engine_on(chat_on)
    for n, user in enumerate(USERS):
        text = FIRST_MESSAGES[n % len(FIRST_MESSAGES)]
        await engine.handle(Inbound.from_text(user, text, NOON_SHANGHAI))
    consenting = Chat(engine, user=USERS[0])
    await consenting.send("/start")
    await consenting.choose("agree")


async def test_fifty_two_who_never_consent_have_no_record_a_day_later(tmp_path: Path) -> None:
    clock = MovableClock(NOON_SHANGHAI.timestamp())
    async with SqliteStorage(tmp_path / "kvisa.db", now=clock) as storage:
        await fifty_three_write_once_and_one_consents(storage)
        assert len([key async for key in storage.users()]) == 53  # asked, and waiting

        clock.seconds += PRE_CONSENT.total_seconds()

        assert [key async for key in storage.users()] == [USERS[0]]


@pytest.mark.redis
async def test_on_redis_each_unconsented_record_expires_within_a_day(
    redis_url: str, redis_prefix: str
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await fifty_three_write_once_and_one_consents(storage)
    async with Redis.from_url(redis_url) as client:
        ttls = {
            user: await client.pttl(f"{redis_prefix}:user:{user.channel}:{user.id}")
            for user in USERS
        }

    assert ttls[USERS[0]] == -1  # consented: kept until erased
    assert all(0 < ms <= PRE_CONSENT.total_seconds() * 1000 for ms in list(ttls.values())[1:])


async def test_a_message_before_consent_keeps_the_record_a_day_from_then(tmp_path: Path) -> None:
    clock = MovableClock(NOON_SHANGHAI.timestamp())
    async with SqliteStorage(tmp_path / "kvisa.db", now=clock) as storage:
        chat = Chat(engine_on(storage), user=USERS[1])
        await chat.send("/start lingang")
        clock.seconds += 20 * 3600
        chat.at += dt.timedelta(hours=20)
        await chat.send("/lang zh")  # still asking: a day from this message
        clock.seconds += 20 * 3600
        chat.at += dt.timedelta(hours=20)

        state = await chat.state()
        assert state is not None
        assert state["prefill"] == {"park": "lingang"} and state["lang"] == "zh"

        await chat.choose("agree")
        clock.seconds += 365 * 24 * 3600

        state = await chat.state()
        assert state is not None and state["answers"]["park"] == "lingang"


async def test_a_record_before_consent_holds_only_what_asking_needs(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "kvisa.db") as storage:
        chat = Chat(engine_on(storage), user=USERS[2])
        await chat.send("/start lingang")

        state = await chat.state()

    assert state is not None
    kept = {k: v for k, v in state.items() if v not in (None, False, 0, {}, [])}
    # Linking adds the record's format and its own identity, with that identity's last
    # message: nothing the key and last_seen did not already say.
    assert set(kept) == {"lang", "awaiting", "prompt", "prefill", "last_seen", "schema"} | {
        "identities",
        "seen",
    }
    assert kept["identities"] == [str(USERS[2])] and kept["seen"] == {
        str(USERS[2]): kept["last_seen"]
    }
    assert kept["awaiting"] == {"kind": "consent"}
