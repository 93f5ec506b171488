"""What every messaging platform adapter provides, and what it is given."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kvisa.bot.messages import Outbound
from kvisa.bot.pacing import Pacer
from kvisa.identity import UserKey

STOP_GRACE = 10.0  # seconds, when stop() is called without one (tests)

if TYPE_CHECKING:
    from aiohttp import web

    from kvisa.bot.clock import Clock
    from kvisa.bot.engine.engine import Engine
    from kvisa.bot.i18n import Catalogs
    from kvisa.bot.settings import Settings


@dataclass(frozen=True)
class Services:
    """What `kvisa serve` hands each channel: one engine, one storage, one clock."""

    settings: Settings
    engine: Engine
    catalogs: Catalogs
    clock: Clock
    # Shared per platform by replies, reminders and broadcasts (see bot/pacing.py).
    pacers: Mapping[str, Pacer] = field(default_factory=dict)


class Channel(ABC):
    """A platform adapter. Replies to a user's message are the adapter's own business; `send`
    is how the bot speaks first (reminders, broadcasts), from a stored UserKey only."""

    name: str

    def routes(self, app: web.Application) -> None:  # noqa: B027 - optional hook
        """Add this channel's HTTP endpoints (webhooks) to the shared server."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin receiving (long polling, menus); return once running."""

    async def drain(self) -> None:  # noqa: B027 - optional hook
        """Take no new updates (stop polling); those received go on. `kvisa serve` refuses
        webhook requests itself while it drains."""

    async def stop(self, grace: float = STOP_GRACE) -> None:  # noqa: B027 - optional hook
        """Stop receiving, let what was received finish within `grace` seconds (the rest is
        cancelled), and release connections."""

    def in_flight(self) -> int:
        """Updates and deliveries received and not finished yet (a gauge of /metrics)."""
        return 0

    @abstractmethod
    async def send(
        self, user: UserKey, messages: Sequence[Outbound], *, news: bool = False
    ) -> None:
        """Deliver messages to a user outside a reply. Raises Blocked, RateLimited or ChannelError.

        `news`: an agency broadcast rather than a service notice (a reminder). The caller paces
        many of them, so flood control is raised at once (RateLimited) instead of waited out
        here; and a platform that allows only service notices outside a window (WeChat's
        templates) raises Undeliverable instead."""

    async def post(self, user: UserKey, message: Outbound) -> str | None:
        """Send one message that may be edited later (an admin's progress): its reference, or
        None when this platform cannot edit messages (then `edit` is never called)."""
        await self.send(user, [message])
        return None

    async def edit(self, user: UserKey, reference: str, message: Outbound) -> None:  # noqa: B027
        """Replace the text of a message sent by `post`."""
