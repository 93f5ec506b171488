"""WeChat's access token, shared by every bot process through the storage.

WeChat hands out one valid token per account: fetching a new one retires the old one (after
a short grace), so processes that each fetched their own would keep breaking each other's
calls. Here the token lives in the storage; a process that finds none (or finds the one
WeChat just refused) takes a claim as a lock, looks again, and only then fetches; the others
wait for the value to appear and use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from kvisa.errors import ChannelError
from kvisa.storage.base import Storage

# Store the token this much shorter than WeChat says it lives (7200 s), so no process uses
# one in its last minutes.
EXPIRY_MARGIN = 300.0
# The lock outlives the fetch it guards (the HTTP client gives up after FETCH_TIMEOUT).
FETCH_TIMEOUT = 10.0
LOCK_TTL = 30.0
# How long a process waits for another one's fetch before it gives up on this call.
WAIT_LIMIT = LOCK_TTL + 5
POLL_INTERVAL = 0.05

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # -> (token, lifetime in seconds)


class AccessTokens:
    """Hands out the account's current token; fetches a new one in one process at a time."""

    def __init__(self, storage: Storage, app_id: str, fetch: Fetch) -> None:
        self.storage = storage
        self.fetch = fetch
        self.key = f"wechat:token:{app_id}"
        self.lock = f"wechat:token-lock:{app_id}"

    async def get(self) -> str:
        cached = await self.storage.get_value(self.key)
        return cached.decode() if cached else await self.refresh(refused=None)

    async def refresh(self, refused: str | None) -> str:
        """A token other than `refused` (the one WeChat just turned down), fetching one only
        if no other process has already stored a newer one."""
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            if (token := await self._usable(refused)) is not None:
                return token
            if await self.storage.claim(self.lock, ttl=LOCK_TTL):
                try:
                    # Another process may have stored one between our read and our claim.
                    if (token := await self._usable(refused)) is not None:
                        return token
                    token, lifetime = await self.fetch()
                    ttl = max(lifetime - EXPIRY_MARGIN, lifetime / 2, 1.0)
                    await self.storage.set_value(self.key, token.encode(), ttl=ttl)
                    return token
                finally:
                    await self.storage.release(self.lock)
            if time.monotonic() > deadline:
                raise ChannelError(
                    "wechat: gave up waiting for another process to fetch the access token"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def _usable(self, refused: str | None) -> str | None:
        cached = await self.storage.get_value(self.key)
        token = cached.decode() if cached else None
        return token if token and token != refused else None
