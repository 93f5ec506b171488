"""Random stores through export and import, on both backends: what comes out is what went in
(records, values, claims, and the published content versions with their ids)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvisa.bot.content.versions import Packed
from kvisa.bot.data.transfer import DERIVED, export_store, import_file
from kvisa.identity import UserKey
from kvisa.storage import Storage
from kvisa.storage.base import JSON
from kvisa.storage.redis import RedisStorage
from kvisa.storage.sqlite import SqliteStorage
from tests.data.conftest import snapshot
from tests.data.test_format import json_objects, packs, user_keys

values = st.dictionaries(
    st.text(min_size=1).filter(lambda name: name not in DERIVED),
    st.tuples(st.binary(max_size=64), st.none() | st.floats(60, 10**6)),
    max_size=8,
)
claims = st.dictionaries(st.text(min_size=1), st.floats(60, 10**6), max_size=4)
# Published in order (ids 1, 2, ...): content, author, note, time, and which earlier version
# a rollback restores (None, or an index taken modulo the versions before it).
publishes = st.lists(
    st.tuples(packs, st.text(), st.text(), st.floats(0, 4e9), st.none() | st.integers(0, 99)),
    max_size=4,
)
Publish = tuple[Packed, str, str, float, int | None]


async def roundtrip(
    source: Storage,
    target: Storage,
    directory: Path,
    records: dict[UserKey, JSON],
    stored: dict[str, tuple[bytes, float | None]],
    taken: dict[str, float],
    published: list[Publish],
) -> None:
    for n, (packed, author, note, at, earlier) in enumerate(published):
        await source.publish_content(
            packed.to_bytes(),
            author=author,
            note=note,
            sha256=packed.sha256,
            published_at=at,
            rollback_of=None if earlier is None or n == 0 else earlier % n + 1,
        )
    for key, data in records.items():
        await source.put(key, data, expected_version=0)
    for name, (value, ttl) in stored.items():
        await source.set_value(name, value, ttl)
    for name, ttl in taken.items():
        await source.claim(name, ttl)
    path = directory / "kvisa.jsonl"

    await export_store(source, path, source="test", version="test")
    await import_file(target, path, merge=False, where="target")

    (await snapshot(source)).assert_same_as(await snapshot(target))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.dictionaries(user_keys, json_objects, max_size=8),
    stored=values,
    taken=claims,
    published=publishes,
)
def test_random_stores_round_trip_through_a_file(
    request: pytest.FixtureRequest,
    backend: str,
    records: dict[UserKey, JSON],
    stored: dict[str, tuple[bytes, float | None]],
    taken: dict[str, float],
    published: list[Publish],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        if backend == "sqlite":
            source: Storage = SqliteStorage(directory / "source.db")
            target: Storage = SqliteStorage(directory / "target.db")
            prefix = None
        else:
            url: str = request.getfixturevalue("redis_url")
            prefix = f"kvisa-test-{uuid.uuid4().hex}"
            source = RedisStorage.from_url(url, prefix=f"{prefix}:source")
            target = RedisStorage.from_url(url, prefix=f"{prefix}:target")

        async def run() -> None:
            async with source, target:
                await roundtrip(source, target, directory, records, stored, taken, published)

        try:
            asyncio.run(run())
        finally:
            if prefix is not None:
                with redis.Redis.from_url(url) as client:
                    stale = list(client.scan_iter(match=f"{prefix}:*", count=500))
                    if stale:
                        client.delete(*stale)
