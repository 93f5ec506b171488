"""What only the Redis backend does: its key layout, its URL and its failures."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kvisa.errors import StorageError
from kvisa.identity import UserKey
from kvisa.storage import open_storage
from kvisa.storage.base import FOREVER, AlreadyClaimed, Once
from kvisa.storage.redis import KeyBuilder, RedisStorage

ALICE = UserKey("telegram", "1001")


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the test database, to look at what the backend wrote."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def closed_port() -> int:
    """A local TCP port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_key_builder_puts_users_and_claims_under_the_prefix() -> None:
    keys = KeyBuilder("kvisa")

    assert keys.user(UserKey("wechat", "oAbC:1")) == "kvisa:user:wechat:oAbC:1"
    assert keys.claim("update:42") == "kvisa:claim:update:42"
    assert keys.value("wechat:token:wx1") == "kvisa:value:wechat:token:wx1"
    assert keys.parse_user("kvisa:user:wechat:oAbC:1") == UserKey("wechat", "oAbC:1")


def test_key_builder_matches_a_prefix_with_glob_characters_literally() -> None:
    assert KeyBuilder("bot[1]*").user_pattern() == "bot\\[1\\]\\*:user:*"


async def test_open_storage_builds_redis_from_its_url() -> None:
    async with open_storage("redis://127.0.0.1:6379/15") as storage:
        assert isinstance(storage, RedisStorage)
        assert storage.keys.prefix == "kvisa"


async def test_an_unreachable_server_raises_storage_error_from_ping() -> None:
    async with RedisStorage.from_url(f"redis://127.0.0.1:{closed_port()}/0") as storage:
        with pytest.raises(StorageError):
            await storage.ping()


@pytest.mark.redis
async def test_a_record_is_a_hash_of_version_and_json_under_the_prefix(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.put(ALICE, {"name": "张伟"}, expected_version=0)
        await storage.claim("update:42", ttl=60)

    keys = sorted([key async for key in raw_redis.scan_iter(match=f"{redis_prefix}:*")])
    assert keys == [
        f"{redis_prefix}:claim:update:42",
        f"{redis_prefix}:user:telegram:1001",
        f"{redis_prefix}:version",
    ]
    stored = await raw_redis.hgetall(f"{redis_prefix}:user:telegram:1001")
    assert stored["v"] == "1"
    assert json.loads(stored["data"]) == {"name": "张伟"}
    assert await raw_redis.get(f"{redis_prefix}:version") == "1"


def test_key_builder_puts_the_version_counter_under_the_prefix() -> None:
    assert KeyBuilder("kvisa").version_counter() == "kvisa:version"


@pytest.mark.redis
async def test_a_deleted_user_leaves_only_the_shared_version_counter(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.put(ALICE, {"name": "张伟"}, expected_version=0)
        record = await storage.get(ALICE)
        assert record is not None
        assert await storage.put(ALICE, None, expected_version=record.version)

    keys = [key async for key in raw_redis.scan_iter(match=f"{redis_prefix}:*")]
    assert keys == [f"{redis_prefix}:version"]


@pytest.mark.redis
async def test_versions_come_from_one_counter_shared_by_every_user(
    redis_url: str, redis_prefix: str
) -> None:
    bob = UserKey("wechat", "oAbC")
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.put(ALICE, {"n": 1}, expected_version=0)
        await storage.put(bob, {"n": 1}, expected_version=0)
        await storage.put(ALICE, {"n": 2}, expected_version=1)

        alice, bobs = await storage.get(ALICE), await storage.get(bob)

    assert alice is not None and bobs is not None
    assert (alice.version, bobs.version) == (3, 2)


@pytest.mark.redis
async def test_a_record_from_before_the_counter_still_gets_a_higher_version(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    # Written by the old script: version 5, no counter key yet.
    await raw_redis.hset(f"{redis_prefix}:user:telegram:1001", mapping={"v": 5, "data": "{}"})

    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        assert await storage.put(ALICE, {"n": 1}, expected_version=5)
        record = await storage.get(ALICE)
        assert record is not None
        assert record.version == 6
        assert await storage.put(ALICE, None, expected_version=6)
        assert await storage.put(ALICE, {"n": 2}, expected_version=0)

        recreated = await storage.get(ALICE)

    assert recreated is not None
    assert recreated.version == 7


@pytest.mark.redis
async def test_a_claim_expires_on_the_server(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.claim("update:42", ttl=60)

    assert 0 < await raw_redis.pttl(f"{redis_prefix}:claim:update:42") <= 60_000


@pytest.mark.redis
async def test_users_ignores_records_under_another_prefix(
    redis_url: str, redis_prefix: str
) -> None:
    # A prefix nested under the test's own, so the fixture's cleanup removes its keys too.
    async with (
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as ours,
        RedisStorage.from_url(redis_url, prefix=f"{redis_prefix}:other") as theirs,
    ):
        await ours.put(ALICE, {"n": 1}, expected_version=0)
        await theirs.put(UserKey("telegram", "2002"), {"n": 2}, expected_version=0)

        assert [key async for key in ours.users()] == [ALICE]


@pytest.mark.redis
async def test_a_client_that_decodes_responses_works_too(redis_url: str, redis_prefix: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    async with RedisStorage(client, prefix=redis_prefix) as storage:
        await storage.put(ALICE, {"name": "张伟"}, expected_version=0)

        record = await storage.get(ALICE)

        assert record is not None
        assert record.data == {"name": "张伟"}
        assert [key async for key in storage.users()] == [ALICE]


@pytest.mark.redis
async def test_listing_with_a_client_that_decodes_responses_keeps_bytes_as_stored(
    redis_url: str, redis_prefix: str
) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    async with RedisStorage(client, prefix=redis_prefix) as storage:
        await storage.put(ALICE, {"name": "张伟"}, expected_version=0)
        await storage.set_value("file", b"\x89PNG\xff\xfe", ttl=60)
        await storage.claim("update:1", ttl=60)

        assert [(key, r.data) async for key, r in storage.records()] == [(ALICE, {"name": "张伟"})]
        assert [v.value async for v in storage.values()] == [b"\x89PNG\xff\xfe"]
        assert [c.name async for c in storage.claims()] == ["update:1"]


@pytest.mark.redis
async def test_listing_sees_only_its_own_prefix(redis_url: str, redis_prefix: str) -> None:
    async with (
        RedisStorage.from_url(redis_url, prefix=redis_prefix) as ours,
        RedisStorage.from_url(redis_url, prefix=f"{redis_prefix}:other") as theirs,
    ):
        await theirs.put(ALICE, {"theirs": True}, expected_version=0)
        await theirs.set_value("v", b"theirs")
        await theirs.claim("c", ttl=60)

        assert [r async for r in ours.records()] == []
        assert [v async for v in ours.values()] == []
        assert [c async for c in ours.claims()] == []


@pytest.mark.redis
async def test_a_key_of_the_wrong_type_raises_storage_error(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    await raw_redis.set(f"{redis_prefix}:user:telegram:1001", "not a hash")

    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        with pytest.raises(StorageError):
            await storage.get(ALICE)
        with pytest.raises(StorageError):
            await storage.put(ALICE, {"n": 1}, expected_version=0)


@pytest.mark.redis
async def test_a_record_that_is_not_json_raises_storage_error(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    await raw_redis.hset(f"{redis_prefix}:user:telegram:1001", mapping={"v": 1, "data": "{x"})

    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        with pytest.raises(StorageError):
            await storage.get(ALICE)


@pytest.mark.redis
async def test_a_value_is_a_plain_key_under_the_prefix_expiring_on_the_server(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.set_value("wechat:token:wx1", b"abc", ttl=60)
        await storage.set_value("kept", b"forever")

    assert await raw_redis.get(f"{redis_prefix}:value:wechat:token:wx1") == "abc"
    assert 0 < await raw_redis.pttl(f"{redis_prefix}:value:wechat:token:wx1") <= 60_000
    assert await raw_redis.pttl(f"{redis_prefix}:value:kept") == -1


@pytest.mark.redis
async def test_a_client_that_decodes_responses_still_gets_values_as_bytes(
    redis_url: str, redis_prefix: str
) -> None:
    picture = b"\x89PNG\r\n\x1a\n\xff\xfe\x00"
    client = Redis.from_url(redis_url, decode_responses=True)
    async with RedisStorage(client, prefix=redis_prefix) as storage:
        await storage.set_value("picture", picture, ttl=60)

        assert await storage.get_value("picture") == picture


@pytest.mark.redis
async def test_the_claim_of_an_update_is_a_plain_key_expiring_on_the_server(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.update(ALICE, lambda data: ({"n": 1}, None), once=Once("msg:42", ttl=30))

    ttl = await raw_redis.pttl(f"{redis_prefix}:claim:msg:42")
    assert 0 < ttl <= 30_000


@pytest.mark.redis
async def test_an_update_sees_a_record_rewritten_behind_its_back(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.update(ALICE, lambda data: ({"n": 1}, None))
        # Another writer (an older release, a repair by hand) with a version of its own.
        await raw_redis.hset(
            f"{redis_prefix}:user:telegram:1001", mapping={"v": 50, "data": '{"n": 7}'}
        )

        seen = await storage.update(
            ALICE, lambda data: ({"n": (data or {})["n"] + 1}, (data or {})["n"])
        )

        record = await storage.get(ALICE)
    assert seen == 7
    assert record is not None and record.data == {"n": 8} and record.version > 50


# --- compare-and-set calls sent together -------------------------------------------------------


@pytest.mark.redis
async def test_concurrent_updates_of_many_users_all_land(redis_url: str, redis_prefix: str) -> None:
    """Turns of many users reaching Redis in the same turn of the loop go as one pipeline;
    each is still its own compare-and-set (and claim), so none is lost or applied twice."""
    users = [UserKey("wechat", f"u{i}") for i in range(120)]
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:

        async def five_turns(user: UserKey) -> list[int]:
            seen = []
            for turn in range(5):
                seen.append(
                    await storage.update(
                        user,
                        lambda data: (
                            {"n": (data or {}).get("n", 0) + 1},
                            (data or {}).get("n", 0),
                        ),
                        once=Once(f"{user}:{turn}", 30),
                    )
                )
            return seen

        results = await asyncio.gather(*(five_turns(user) for user in users))
        with pytest.raises(AlreadyClaimed):  # a retried message, in a batch of its own
            await storage.update(
                users[0], lambda data: ({"n": -1}, None), once=Once(f"{users[0]}:4", 30)
            )
        records = await asyncio.gather(*(storage.get(user) for user in users))
    assert all(seen == [0, 1, 2, 3, 4] for seen in results)
    assert all(record is not None and record.data == {"n": 5} for record in records)


@pytest.mark.redis
async def test_a_batch_survives_redis_forgetting_the_script(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    """After SCRIPT FLUSH (or a Redis restart) a pipelined batch gets NOSCRIPT for every call:
    none of them ran, so each is run again, loading the script."""
    users = [UserKey("wechat", f"u{i}") for i in range(20)]
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await asyncio.gather(
            *(storage.update(user, lambda data: ({"n": 1}, None)) for user in users)
        )
        await raw_redis.script_flush()
        await asyncio.gather(
            *(
                storage.update(user, lambda data: ({"n": (data or {})["n"] + 1}, None))
                for user in users
            )
        )
        records = await asyncio.gather(*(storage.get(user) for user in users))
    assert all(record is not None and record.data == {"n": 2} for record in records)


async def test_a_failed_batch_fails_each_of_its_calls_with_storage_error() -> None:
    storage = RedisStorage.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    try:
        outcomes = await asyncio.gather(
            *(
                storage.update(UserKey("wechat", f"u{i}"), lambda data: ({"n": 1}, None))
                for i in range(5)
            ),
            return_exceptions=True,
        )
    finally:
        await storage.close()
    assert all(isinstance(outcome, StorageError) for outcome in outcomes)


@pytest.mark.redis
async def test_a_cancelled_caller_leaves_the_rest_of_its_batch_answered(
    redis_url: str, redis_prefix: str
) -> None:
    users = [UserKey("wechat", f"u{i}") for i in range(10)]
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        # Stored and known here, so the updates go straight to the script.
        await asyncio.gather(
            *(storage.update(user, lambda data: ({"n": 0}, None)) for user in users)
        )
        calls = [
            asyncio.create_task(storage.update(user, lambda data: ({"n": 1}, "done")))
            for user in users
        ]
        await asyncio.sleep(0)  # every call is waiting for the batch to be sent
        calls[3].cancel()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(outcomes[3], asyncio.CancelledError)
    assert outcomes[:3] + outcomes[4:] == ["done"] * 9


@pytest.mark.redis
async def test_a_record_ttl_is_the_user_keys_own_expiry_on_the_server(
    redis_url: str, redis_prefix: str, raw_redis: Redis
) -> None:
    day = 24 * 3600.0
    user_key = f"{redis_prefix}:user:telegram:1001"
    async with RedisStorage.from_url(redis_url, prefix=redis_prefix) as storage:
        await storage.update(ALICE, lambda data: ({"asked": "consent"}, None), ttl=lambda d: day)
        assert 0 < await raw_redis.pttl(user_key) <= day * 1000

        await storage.update(ALICE, lambda data: ({"asked": "again"}, None))  # kept
        assert 0 < await raw_redis.pttl(user_key) <= day * 1000

        await storage.update(ALICE, lambda data: ({"consented": True}, None), ttl=lambda d: FOREVER)
        assert await raw_redis.pttl(user_key) == -1
