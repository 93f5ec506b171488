"""Pacing messages to a platform's rate, with the users who are chatting served first.

Telegram accepts about 30 messages a second from a bot in all; WeChat's customer-service API
has its own quota. Bulk senders (reminders, broadcasts) `wait()` for their turn; replies to a
user who is chatting `spend()` a turn without waiting, which pushes the bulk senders back by
one interval. So the bot as a whole stays within the rate, and a broadcast of thousands never
delays an answer: it is the broadcast that yields.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from kvisa.errors import ConfigError

# Messages a second per platform: Telegram's documented bulk limit; WeChat's customer-service
# messages have a daily quota rather than a rate, 50 a second keeps a burst polite.
DEFAULT_RATES: Mapping[str, float] = {"telegram": 30.0, "wechat": 50.0}


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


def rates_from_env(env: Mapping[str, str] | None = None) -> dict[str, float]:
    """`KVISA_RATE_TELEGRAM`, `KVISA_RATE_WECHAT`: messages a second the bot sends to each."""
    env = os.environ if env is None else env
    rates = dict(DEFAULT_RATES)
    for channel in list(rates):
        name = f"KVISA_RATE_{channel.upper()}"
        value = env.get(name)
        if not value:
            continue
        try:
            rates[channel] = float(value)
        except ValueError:
            raise ConfigError(
                name, f"must be a number of messages a second, got {value!r}"
            ) from None
        if rates[channel] <= 0:
            raise ConfigError(name, f"must be positive, got {value!r}")
    return rates
