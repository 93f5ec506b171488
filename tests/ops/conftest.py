"""Fixtures of the operations tests: private Redis servers, replicas and fronts, all stopped
(killed if need be) at the end of the test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.telegram.fake_api import TOKEN, FakeBotApi
from tests.ops.nodes import Front, RedisNode, Replica

WEBHOOK_SECRET = "ops-webhook_secret"
ADMIN_TOKEN = "ops-admin-token-0123456789"


@pytest.fixture
def redis_nodes(tmp_path: Path) -> Iterator[Callable[..., RedisNode]]:
    started: list[RedisNode] = []

    def make(name: str, *extra: str, **options: Any) -> RedisNode:
        node = RedisNode(tmp_path / name, *extra, **options)
        started.append(node)
        return node

    yield make
    for node in reversed(started):
        node.kill()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    made: list[Replica] = []

    def make(name: str, env: dict[str, str], command: list[str] | None = None) -> Replica:
        replica = Replica(name, env, tmp_path / "replicas")
        if command is not None:
            replica.command = command
        made.append(replica)
        return replica

    yield make
    for replica in made:
        replica.cleanup()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


@pytest.fixture
async def front_for() -> AsyncIterator[Callable[[list[Replica]], Any]]:
    fronts: list[Front] = []

    async def make(members: list[Replica]) -> Front:
        front = await Front(members).start()
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        await front.stop()


def telegram_env(fake: FakeBotApi, front: Front, redis_url: str, **more: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": fake.base_url,
        "TELEGRAM_WEBHOOK_URL": f"{front.base_url}/telegram",
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": redis_url,
        "KVISA_ADMIN_TOKEN": ADMIN_TOKEN,
        "KVISA_LOG_LEVEL": "INFO",
        **more,
    }


def log_lines(path: Path) -> list[dict[str, Any]]:
    """A replica's log: every line must be one JSON object."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        lines.append(record)
    return lines
