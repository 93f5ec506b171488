"""Reminder settings from the environment; every one has a default that suits production."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from kvisa.bot.pacing import DEFAULT_RATES, rates_from_env
from kvisa.errors import ConfigError


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {value!r}") from None
    if seconds <= 0:
        raise ConfigError(name, f"must be positive, got {value!r}")
    return seconds


@dataclass(frozen=True)
class ReminderSettings:
    # How long one delivery may hold a reminder (claim, send, record). A process killed in
    # the middle leaves the claim to expire: the reminder then goes out this much later.
    lease: float = 300.0
    # A job whose delivery did not confirm (the process died) fires again this much later.
    retry: float = 300.0
    # The scheduler's leader lock (Redis): held this long without renewal before another
    # process takes over; renewed every third of it.
    leader_ttl: float = 15.0
    # How often the leader looks for users whose reminders other processes asked it to
    # reschedule (it is also woken at once when it asks itself).
    drain_interval: float = 0.5
    # Messages per second to each platform (Telegram allows about 30 a second in all); in
    # `kvisa serve` the pacers are shared with broadcasts and replies (bot/pacing.py).
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    # Users whose reminders are delivered at once (each holds Redis connections meanwhile).
    concurrency: int = 16

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReminderSettings:
        env = os.environ if env is None else env
        defaults = cls()
        rates = rates_from_env(env)
        return cls(
            lease=_seconds(env, "KVISA_REMINDER_LEASE", defaults.lease),
            retry=_seconds(env, "KVISA_REMINDER_RETRY", defaults.retry),
            leader_ttl=_seconds(env, "KVISA_REMINDER_LEADER_TTL", defaults.leader_ttl),
            drain_interval=_seconds(env, "KVISA_REMINDER_DRAIN_INTERVAL", defaults.drain_interval),
            rates=rates,
        )
