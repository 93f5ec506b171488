"""Pacing messages to a platform's rate, with the users who are chatting served first.

Telegram accepts about 30 messages a second from a bot in all; WeChat's customer-service API
has its own quota. Bulk senders (reminders, broadcasts) `wait()` for their turn; replies to a
user who is chatting `spend()` a turn without waiting, which pushes the bulk senders back by
one interval. So the bot as a whole stays within the rate, and a broadcast of thousands never
delays an answer: it is the broadcast that yields.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from kvisa.bot.settings import DEFAULT_RATES

__all__ = ["DEFAULT_RATES", "Pacer", "pacers"]


class Pacer:
    """At most `rate` messages a second to one platform, counting interactive replies."""

    def __init__(self, rate: float, burst: int = 2) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        self.burst = burst  # sleeping overshoots a little: let a late sender catch up this much
        self._next = 0.0  # the earliest time the next bulk message may go
        self._lock = asyncio.Lock()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def wait(self) -> None:
        """A bulk message's turn (callers queue in order)."""
        async with self._lock:
            while (delay := self._next - self._now()) > 0:
                await asyncio.sleep(delay)  # spend() or hold() may have moved _next meanwhile
            self._next = max(self._next, self._now() - self.burst * self.interval) + self.interval

    def spend(self) -> None:
        """An interactive message goes now; bulk messages make room for it."""
        self._next = max(self._next, self._now() - self.burst * self.interval) + self.interval

    def hold(self, seconds: float) -> None:
        """The platform said to slow down: no bulk message for `seconds`."""
        self._next = max(self._next, self._now() + seconds)


def pacers(rates: Mapping[str, float]) -> dict[str, Pacer]:
    """One pacer per platform, shared by everything in the process that sends to it."""
    return {channel: Pacer(rate) for channel, rate in rates.items()}
