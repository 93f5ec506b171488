"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

# --- Redis -----------------------------------------------------------------------------------
# Tests marked `redis` need a real server. They fail (not skip) when it is missing, so a CI
# without Redis cannot look green by accident; KVISA_TEST_SKIP_REDIS=1 opts out explicitly.

REDIS_URL = os.environ.get("KVISA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SKIP_REDIS = os.environ.get("KVISA_TEST_SKIP_REDIS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SKIP_REDIS:
        return
    skip = pytest.mark.skip(reason="KVISA_TEST_SKIP_REDIS=1")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, once it has answered a PING."""
    if SKIP_REDIS:
        pytest.skip("KVISA_TEST_SKIP_REDIS=1")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, retry=None)
    try:
        client.ping()
        problem = None
    except redis.RedisError as exc:
        problem = str(exc)
    finally:
        client.close()
    if problem is not None:  # failed outside the except block, so the report is one line
        pytest.fail(
            f"these tests need a Redis server at {REDIS_URL} ({problem}); start one with "
            "`redis-server --port 6379` or set KVISA_TEST_REDIS_URL; "
            "set KVISA_TEST_SKIP_REDIS=1 to skip them",
            pytrace=False,
        )
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"kvisa-test-{uuid.uuid4().hex}"
    yield prefix
    # A synchronous client: cleanup must not depend on the test's event loop still running.
    with redis.Redis.from_url(redis_url) as client:
        stale = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if stale:
            client.delete(*stale)
