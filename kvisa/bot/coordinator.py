"""Who runs the scheduler, and how the others schedule through it.

An APScheduler 3 job store must never be shared by two schedulers. With Redis, the
processes of a deployment elect one leader with redis-py's lock (`redis.asyncio.lock.Lock`:
a key set with NX and an expiry, holding a token of its owner), which the leader renews
every third of its ttl (`reacquire`); if the leader dies, the lock expires and another
process takes over within about one ttl. Every process, leader or not, asks for a user's
reminders to be rescheduled by adding the user to a Redis hash; the leader drains it. An
entry leaves the hash only once handled, and only if nobody asked again meanwhile (a
counter per user, compared and deleted in one script), so no request is lost when a leader
dies in the middle or when a turn lands while its user is being handled.

Without Redis (SQLite, one process) the process is its own leader and the queue is in memory.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import LockNotOwnedError, RedisError

from kvisa.bot.loops import pause, raise_if_cancelled
from kvisa.identity import UserKey

log = logging.getLogger(__name__)

# Forget a request only if it was not renewed while it was being handled.
DONE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

Hook = Callable[[], Awaitable[None]]


class Coordinator(ABC):
    """Leadership of the scheduler and the queue of users to reschedule."""

    leader: bool = False

    @abstractmethod
    async def start(self, elected: Hook, deposed: Hook) -> None:
        """Begin; `elected` runs when this process becomes the leader, `deposed` when it
        stops being it."""

    @abstractmethod
    async def stop(self) -> None:
        """Give up leadership (at once, so another process can take over) and stop."""

    @abstractmethod
    async def request(self, user: UserKey) -> None:
        """Ask the leader, wherever it runs, to reschedule `user`."""

    @abstractmethod
    async def pending(self, limit: int) -> list[tuple[UserKey, str]]:
        """Up to `limit` requests: (user, token to pass to `done`)."""

    @abstractmethod
    async def done(self, user: UserKey, token: str) -> None:
        """The request was handled (kept if it was renewed since `pending`)."""

    async def wait(self, timeout: float) -> None:
        """Until a request may be waiting (at most `timeout` seconds)."""
        await pause(timeout)

    async def backlog(self) -> int:
        """How many users wait to be rescheduled (a gauge of /metrics)."""
        return 0


class LocalCoordinator(Coordinator):
    """One process: always the leader, requests in memory."""

    def __init__(self) -> None:
        self._requests: dict[UserKey, int] = {}
        self._wakeup = asyncio.Event()
        self._deposed: Hook | None = None

    async def start(self, elected: Hook, deposed: Hook) -> None:
        self._deposed = deposed
        await elected()
        self.leader = True

    async def stop(self) -> None:
        if self.leader and self._deposed:
            self.leader = False
            await self._deposed()

    async def request(self, user: UserKey) -> None:
        self._requests[user] = self._requests.get(user, 0) + 1
        self._wakeup.set()

    async def pending(self, limit: int) -> list[tuple[UserKey, str]]:
        return [(user, str(n)) for user, n in list(self._requests.items())[:limit]]

    async def done(self, user: UserKey, token: str) -> None:
        if str(self._requests.get(user)) == token:
            del self._requests[user]

    async def backlog(self) -> int:
        return len(self._requests)

    async def wait(self, timeout: float) -> None:
        raise_if_cancelled()  # the caller's loop: a cancel swallowed below must still end it
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            pass
        self._wakeup.clear()


class RedisCoordinator(Coordinator):
    """Several processes on one Redis: an expiring leader lock and a shared request hash."""

    def __init__(self, client: Redis, prefix: str, ttl: float, name: str = "reminders") -> None:
        self.client = client
        self.name = name
        self.lock_key = f"{prefix}:{name}:leader"
        self.queue_key = f"{prefix}:{name}:pending"
        self.ttl = max(ttl, 0.001)
        self.identity = uuid.uuid4().hex  # the lock's token while this process holds it
        # Not thread-local: the token belongs to this process's event loop, not a thread.
        self.lock = client.lock(self.lock_key, timeout=self.ttl, thread_local=False)
        self._done = client.register_script(DONE)
        self._task: asyncio.Task[None] | None = None
        self._elected: Hook | None = None
        self._deposed: Hook | None = None
        self._stopping = asyncio.Event()

    async def start(self, elected: Hook, deposed: Hook) -> None:
        self._elected, self._deposed = elected, deposed
        self._stopping.clear()
        await self._step()  # a lone process is the leader by the time start() returns
        self._task = asyncio.create_task(self._run(), name="reminders-leader-lock")

    async def stop(self) -> None:
        # Never cancel a step: one may be starting or stopping the scheduler in its hook, and
        # cancelling it there would leave a scheduler running with nobody to stop it. The loop
        # sees the event between steps and ends.
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.leader:
            await self._set_leader(False)
            await self._let_go()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(self.ttl / 3):
                    await self._stopping.wait()
            except TimeoutError:
                await self._step()

    async def _step(self) -> None:
        held: bool
        try:
            if self.leader:
                held = await self.lock.reacquire()  # the full ttl again, if still ours
            else:
                held = await self.lock.acquire(blocking=False, token=self.identity)
        except LockNotOwnedError:  # it expired (a stall longer than the ttl): another may lead
            log.warning("%s: the leader lock expired before it was renewed", self.name)
            held = False
        except RedisError as exc:  # LockError included
            # Unsure whether we still hold it: step down rather than risk two schedulers.
            log.warning("%s: leader lock: %s", self.name, exc)
            held = False
        if held != self.leader:
            await self._set_leader(held)

    async def _set_leader(self, leader: bool) -> None:
        """`leader` turns true only once the scheduler runs, and false before it stops, so a
        process that says it leads always has a scheduler."""
        log.info("%s: leadership %s in this process", self.name, "starts" if leader else "ends")
        if leader:
            try:
                if self._elected is not None:
                    await self._elected()
            except Exception:
                # Could not start the scheduler: undo what started and let the lock go, so
                # this process or another tries again.
                log.exception("%s: could not start as the leader", self.name)
                if self._deposed is not None:
                    await self._deposed()
                await self._let_go()
                return
            self.leader = True
        else:
            self.leader = False
            if self._deposed is not None:
                await self._deposed()

    async def _let_go(self) -> None:
        """Release the lock at once, so another process need not wait for it to expire."""
        try:
            await self.lock.release()
        except LockNotOwnedError:  # expired meanwhile: nothing to release
            pass
        except RedisError as exc:  # LockError included; it expires on its own
            log.warning("%s: could not release the leader lock: %s", self.name, exc)

    async def request(self, user: UserKey) -> None:
        await self.client.hincrby(self.queue_key, str(user), 1)

    async def pending(self, limit: int) -> list[tuple[UserKey, str]]:
        answer = await self.client.hrandfield(self.queue_key, limit, withvalues=True)
        entries = cast(list[bytes | str], answer or [])  # [field, value, field, value, ...]
        pairs = list(zip(entries[::2], entries[1::2], strict=True))
        result = []
        for raw_user, raw_count in pairs:
            user = raw_user.decode() if isinstance(raw_user, bytes) else raw_user
            count = raw_count.decode() if isinstance(raw_count, bytes) else raw_count
            result.append((UserKey.parse(user), str(count)))
        return result

    async def done(self, user: UserKey, token: str) -> None:
        await self._done(keys=[self.queue_key], args=[str(user), token])

    async def backlog(self) -> int:
        return int(await self.client.hlen(self.queue_key))
