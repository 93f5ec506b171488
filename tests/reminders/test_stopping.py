"""A reminder service stops even when a library below turned its cancellation into an error.

Seen in the topology test: Redis restarted while the leader's drainer was reading the queue,
redis-py raised "Connection closed by server" instead of the CancelledError, the drainer's
`except Exception` went round again, and the process never exited on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kvisa.bot.loops import pause, raise_if_cancelled
from kvisa.identity import UserKey
from kvisa.storage.sqlite import SqliteStorage
from tests.reminders.conftest import ServiceFactory


async def cancel_turned_into_an_error(limit: int) -> list[tuple[UserKey, str]]:
    """A queue read that never answers and, when cancelled, raises a connection error (what
    redis-py did while the server restarted)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise ConnectionError("Connection closed by server") from None
    return []


async def test_a_stop_ends_the_drainer_even_when_its_cancel_became_an_error(
    services: ServiceFactory, storage: SqliteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = await services(storage)
    reading = asyncio.Event()

    async def pending(limit: int) -> list[tuple[UserKey, str]]:
        reading.set()
        return await cancel_turned_into_an_error(limit)

    monkeypatch.setattr(service.coordinator, "pending", pending)
    await service.coordinator.request(UserKey("telegram", "1"))  # wakes the drainer
    async with asyncio.timeout(10):
        await reading.wait()
    async with asyncio.timeout(10):  # before the fix: never returned
        await service.stop()
    assert not service.leader


async def test_a_loop_that_catches_everything_still_ends_when_cancelled() -> None:
    passes = 0

    async def loop() -> None:
        nonlocal passes
        while True:
            raise_if_cancelled()
            passes += 1
            try:
                await cancel_turned_into_an_error(1)
            except Exception:
                raise_if_cancelled()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert passes == 1


async def test_a_cancel_swallowed_without_an_error_does_not_become_a_long_sleep() -> None:
    async def swallowed() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()

    async def daily() -> None:  # the retention pass's shape
        while True:
            raise_if_cancelled()
            await swallowed()
            await pause(24 * 3600)

    task = asyncio.create_task(daily())
    await asyncio.sleep(0.01)
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
