"""What the reminder service needs: from the settings (KVISA_REMINDER_*, KVISA_RATE_*), plus
tuning knobs; every default suits production."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kvisa.bot.settings import DEFAULT_RATES, Settings


@dataclass(frozen=True)
class ReminderSettings:
    """The reminder service's leases, leader lock, rates and concurrency."""

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
    def from_settings(cls, settings: Settings) -> ReminderSettings:
        return cls(
            lease=settings.reminder_lease,
            retry=settings.reminder_retry,
            leader_ttl=settings.reminder_leader_ttl,
            drain_interval=settings.reminder_drain_interval,
            rates=settings.rates,
        )
